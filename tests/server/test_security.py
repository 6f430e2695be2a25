"""Origin allow-lists and constant-time secret comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.server.security import OriginPolicy, secrets_equal


class TestOriginPolicy:
    def test_exact_origins_match_case_insensitively(self) -> None:
        policy = OriginPolicy(["https://example.com", "http://localhost:8000"])
        assert policy.allows("https://example.com")
        assert policy.allows("HTTPS://Example.COM")
        assert policy.allows("http://localhost:8000")
        assert not policy.allows("http://example.com")
        assert not policy.allows("https://example.com:8443")
        assert not policy.allows("https://example.com.evil.net")
        assert not policy.allows("null")

    def test_pattern_stands_for_whole_labels(self) -> None:
        policy = OriginPolicy(["https://*.example.com"])
        assert policy.allows("https://app.example.com")
        assert policy.allows("https://a.b.example.com")
        assert not policy.allows("https://example.com")
        assert not policy.allows("https://evil-example.com")
        assert not policy.allows("https://app.example.com.evil.net")
        assert not policy.allows("http://app.example.com")
        assert not policy.allows("https://app.example.com:444")

    def test_pattern_with_port(self) -> None:
        policy = OriginPolicy(["http://*.test:8080"])
        assert policy.allows("http://a.test:8080")
        assert not policy.allows("http://a.test")

    def test_missing_origin_is_allowed_unless_refused(self) -> None:
        assert OriginPolicy(["https://example.com"]).allows(None)
        assert not OriginPolicy(["https://example.com"], allow_missing=False).allows(None)

    @pytest.mark.parametrize(
        "pattern", ["*://example.com", "https://ex*.com", "https://example.*", "example.com*"]
    )
    def test_ambiguous_patterns_are_refused(self, pattern: str) -> None:
        with pytest.raises(ValueError):
            OriginPolicy([pattern])

    def test_matching_is_linear_on_hostile_input(self) -> None:
        # A classic catastrophic-backtracking probe: many labels that almost
        # match, then a mismatch at the very end.  With nested quantifiers
        # this would take exponential time; here it returns at once.
        policy = OriginPolicy(["https://*.example.com"])
        hostile = "https://" + "a." * 50_000 + "example.co"
        assert not policy.allows(hostile)

    @given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,4}", fullmatch=True))
    def test_any_subdomain_matches_and_the_bare_domain_does_not(self, sub: str) -> None:
        policy = OriginPolicy(["https://*.example.com"])
        assert policy.allows(f"https://{sub}.example.com")
        assert not policy.allows(f"https://{sub}example.com")


class TestSecretsEqual:
    def test_equal_and_unequal(self) -> None:
        assert secrets_equal("token", "token")
        assert secrets_equal(b"token", "token")
        assert not secrets_equal("token", "tokem")
        assert not secrets_equal("token", "token2")
        assert not secrets_equal("", "token")

    def test_non_ascii_secrets_are_compared_as_utf8(self) -> None:
        assert secrets_equal("clé", "clé".encode())
        assert not secrets_equal("clé", "cle")
