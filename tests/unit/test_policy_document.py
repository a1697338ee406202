"""The RAM policy language: what a valid document is, and how a broken one is reported."""

from __future__ import annotations

import json

import pytest

from openims.authz import document
from openims.errors import ApiError


def doc(*statements: object, **top: object) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements), **top})


def allow(**extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": "ram:Get*", "Resource": "*", **extra}


def fault(text: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        document.parse(text)
    return info.value


def test_valid_documents_parse() -> None:
    parsed = document.parse(
        doc(
            {"Effect": "Allow", "Action": ["ram:Get*", "ram:List?sers"], "Resource": ["acs:ram:*:*:user/dev-*", "*"]},
            {
                "Effect": "Deny",
                "NotAction": "actiontrail:*",
                "NotResource": "acs:ram:*:123:group/ops",
                "Condition": {
                    "IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "127.0.0.1"]},
                    "Bool": {"acs:MFAPresent": True},
                    "DateLessThan": {"acs:CurrentTime": "2030-01-01T00:00:00+08:00"},
                    "NumericLessThan": {"ram:Count": 3},
                    "StringLike": {"ram:Tag/team": "dev-*"},
                },
            },
        )
    )
    first, second = parsed.statements
    assert first.effect == "Allow" and first.actions == ("ram:Get*", "ram:List?sers") and not first.not_action
    assert second.not_action and second.not_resource and second.resources == ("acs:ram:*:123:group/ops",)
    ops = {(c.operator, c.key): c.values for c in second.conditions}
    assert ops[("IpAddress", "acs:SourceIp")] == ("10.0.0.0/8", "127.0.0.1")
    assert ops[("Bool", "acs:MFAPresent")] == ("true",) and ops[("NumericLessThan", "ram:Count")] == ("3",)
    # A lone statement object is accepted as a one-item list, and "*" alone is a valid action.
    assert (
        len(
            document.parse(
                json.dumps({"Version": "1", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}})
            ).statements
        )
        == 1
    )


@pytest.mark.parametrize(
    "text, says",
    [
        ("{not json", "line 1 column 2"),
        ("[]", "must be a JSON object"),
        (json.dumps({"Statement": [allow()]}), "has no Version"),
        (doc(allow(), Version="2"), 'Version is "2"'),
        (json.dumps({"Version": 1, "Statement": [allow()]}), "Version is 1"),
        (json.dumps({"Version": "1"}), "has no Statement"),
        (doc(), "Statement must be a non-empty list"),
        (doc(allow(), Id="x"), "the document.Id is not a policy element"),
        (doc(allow(Sid="one")), "Statement[0].Sid is not a policy element"),
        (doc(allow(Principal={"RAM": "*"})), "Principal belongs only in a role's trust policy"),
        (doc({"Action": "ram:*", "Resource": "*"}), "Statement[0].Effect is missing"),
        (doc(allow(Effect="allow")), 'Effect is "allow"; it must be "Allow" or "Deny"'),
        (doc({"Effect": "Allow", "Resource": "*"}), "must have exactly one of Action and NotAction"),
        (doc(allow(NotAction="ram:*")), "must have exactly one of Action and NotAction"),
        (doc({"Effect": "Allow", "Action": "ram:*"}), "must have exactly one of Resource and NotResource"),
        (doc(allow(Action=[])), "Action must be a string or a non-empty list"),
        (doc(allow(Action=["ram:GetUser", 7])), "Statement[0].Action[1] is 7, not a string"),
        (doc(allow(Action="CreateUser")), 'Action[0] "CreateUser" is not * or <service>:<action>'),
        (doc(allow(Action="ram:Create User")), 'Action[0] "ram:Create User" is not'),
        (doc(allow(Resource="user/dev-1")), 'Resource[0] "user/dev-1" is not * or an ARN'),
        (doc(allow(Resource="acs:ram:*:user")), "is not * or an ARN"),
        (doc(allow(Condition={})), "Condition must be a non-empty object"),
        (
            doc(allow(Condition={"StringEqual": {"acs:SourceIp": "x"}})),
            "Condition.StringEqual is not a condition operator",
        ),
        (doc(allow(Condition={"Bool": "true"})), "Condition.Bool must be a non-empty object"),
        (doc(allow(Condition={"Bool": {"MFAPresent": "true"}})), "Condition.Bool.MFAPresent is not a condition key"),
        (doc(allow(Condition={"Bool": {"acs:MFAPresent": []}})), "has no values"),
        (doc(allow(Condition={"Bool": {"acs:MFAPresent": "yes"}})), "Bool takes true or false"),
        (doc(allow(Condition={"IpAddress": {"acs:SourceIp": "999.1.1.1"}})), "not an IP address or CIDR block"),
        (doc(allow(Condition={"DateLessThan": {"acs:CurrentTime": "tomorrow"}})), "not a date: use ISO 8601"),
        (doc(allow(Condition={"NumericEquals": {"ram:N": "ten"}})), '"ten", not a number'),
        (doc(allow(Condition={"StringEquals": {"ram:N": {"a": 1}}})), "must be a string, number or boolean"),
        ('{"Version": "1", "Version": "1", "Statement": []}', "the element 'Version' appears twice"),
    ],
)
def test_malformed_documents_say_what_is_wrong(text: str, says: str) -> None:
    err = fault(text)
    assert err.code == "MalformedPolicyDocument" and err.status == 400
    assert says in err.message, err.message


def test_size_limit_counts_bytes() -> None:
    base = doc(allow(Resource="acs:ram:*:*:user/x"))
    pad = 6144 - len(base.encode())
    exact = base.replace("user/x", "user/x" + "a" * pad)
    assert len(exact.encode()) == 6144
    document.parse(exact)
    err = fault(exact.replace("user/x", "user/xa"))
    assert err.code == "LimitExceeded.Policy.Size" and err.status == 409 and "6145 bytes" in err.message
    # Multi-byte characters count by their UTF-8 size.
    wide = base.replace("user/x", "user/x" + "é" * (pad // 2 + 1))
    assert len(wide) <= 6144 < len(wide.encode())
    assert fault(wide).code == "LimitExceeded.Policy.Size"
