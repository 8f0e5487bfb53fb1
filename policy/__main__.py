"""tfserving policy pack: every rule listed in policy/rules.py as a mandatory policy.

Resource rules become ResourceValidationPolicies (one resource at a time), stack rules
StackValidationPolicies (every resource of the stack at once, after the engine has them all).
"""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The rules are modules of their own so tests import them without starting the pack (rules.py
# registers the checks of workloads.py, exposure.py and aws.py). Pulumi runs this file as a
# script from policy/ (those are then top-level modules); tests and mypy see the package
# `policy`. The pack imports nothing else from the repository.
try:
    from policy.rules import RULES, STACK_RULES, Rule, StackRule
except ImportError:
    from rules import RULES, STACK_RULES, Rule, StackRule  # type: ignore[import-not-found, no-redef]


def as_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props, args.name):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def as_stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [(r.resource_type, r.props, r.name) for r in args.resources]
        for message in rule.check(resources):
            report_violation(message, None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


PolicyPack(
    name="tfserving-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(as_policy(rule) for rule in RULES),
        *(as_stack_policy(rule) for rule in STACK_RULES),
    ],
)
