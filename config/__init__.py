"""Typed stack settings: every `tfserving:*` key read once, validated, with defaults.

No resources are declared here. `config.stack.load()` returns one settings object per target
(`config.settings`: `MinikubeSettings`, `KindSettings`, `EksSettings`); a bad value stops the
program before any resource is registered, with a message naming the key path. The package
itself imports nothing, so tools can read `config.paths` without loading pydantic or Pulumi.
"""
