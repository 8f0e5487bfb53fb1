"""tfserving policy pack: each rule of policy/rules.py as a mandatory ResourceValidationPolicy."""

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

# Pulumi runs this file with policy/ as the script directory; the rules live in the `policy`
# package (so tests import them without starting the pack), hence the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.rules import RULES, Rule


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


PolicyPack(
    name="tfserving-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[as_policy(rule) for rule in RULES],
)
