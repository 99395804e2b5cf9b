from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import UrlError
from feedsvc.urls import (
    entry_id,
    identity_key,
    identity_key_in_full,
    image_media_type,
    is_safe_url,
    normalize_base_url,
    normalize_in_full,
    normalize_url,
)

# Characters allowed unescaped in a URL produced by normalize_url (RFC 3986 plus "%").
URL_CHARACTERS = set(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/?w=600&#038;h=600", "https://example.com/?w=600&h=600"),
        ("https://example.com/?a=1&amp;b=2", "https://example.com/?a=1&b=2"),
        ("https://example.com/?a=1&para=2&copy=3", "https://example.com/?a=1&para=2&copy=3"),
        ("https://example.com/?q=caf&#233;", "https://example.com/?q=caf%C3%A9"),
        ("https://example.com/already%20escaped", "https://example.com/already%20escaped"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ("https://example.com/img.jpg&w=600", "https://example.com/img.jpg&w=600"),
        ("https://example.com/?q=$!;,*+", "https://example.com/?q=$!;,*+"),
        ("  https://EXAMPLE.com  ", "https://example.com/"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com/ü?q=ä", "https://example.com/%C3%BC?q=%C3%A4"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("//cdn.example.com/x.png", "https://cdn.example.com/x.png"),
        (
            "https://a.example/r?u=https://b.example/p?x=1&y=2",
            "https://a.example/r?u=https://b.example/p?x=1&y=2",
        ),
    ],
)
def test_normalize_url_makes_urls_safe(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("javascript:alert(1)", "uses the 'javascript' scheme; only http and https are published"),
        ("data:image/png;base64,AAAA", "uses the 'data' scheme; only http and https are published"),
        ("file:///etc/passwd", "uses the 'file' scheme; only http and https are published"),
        ("https:///no-host", "has no host"),
        ("www.example.com/page", "is not an absolute http(s) URL"),
        ("https://example.com:99999/", "cannot be parsed (Port out of range 0-65535)"),
        ("http://a b.example/", "has a host name with characters no host name has: 'a b.example'"),
        (
            "https://" + "ü" * 64 + ".example/",
            "has a host name that cannot be encoded (encoding with 'idna' codec failed "
            "(UnicodeError: label empty or too long))",
        ),
        ("/assets/logo.jpg", "is site-relative and ASSET_BASE_URL is not set"),
    ],
)
def test_normalize_url_refuses_unsafe_urls_saying_why(raw: str, reason: str) -> None:
    """The reason is the one line a rejected record's problem shows."""
    with pytest.raises(UrlError) as caught:
        normalize_url(raw)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("https://x.example:99999/", "cannot be parsed (Port out of range 0-65535)"),
        ("https:x.example/", "is not an absolute http(s) URL"),  # a scheme, but no "//"
        ("x.example/", "is not an absolute http(s) URL"),
        ("ftp://x.example/", "uses the 'ftp' scheme; only http and https are published"),
        ("https://x.example/?a=1", "has a query (?...), which would end up in every link"),
        ("https://x.example/#top", "has a fragment (#...), which would end up in every link"),
        (
            "https://user:pw@x.example/",
            "has userinfo (user:password@), which would be published in every link",
        ),
    ],
)
def test_a_base_url_is_refused_saying_why(raw: str, reason: str) -> None:
    with pytest.raises(UrlError) as caught:
        normalize_base_url(raw)
    assert str(caught.value) == reason


def test_ip_literals_keep_their_brackets() -> None:
    assert normalize_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert normalize_url("https://[2001:DB8::1]/") == "https://[2001:db8::1]/"


def test_site_relative_urls_need_a_base() -> None:
    with pytest.raises(UrlError) as caught:
        normalize_url("/assets/logo.jpg")
    assert caught.value.relative
    resolved = normalize_url("/assets/logo.jpg", "https://cdn.example.com/site/")
    assert resolved == "https://cdn.example.com/site/assets/logo.jpg"
    # Only the base's trailing "/" goes, whatever its path ends with.
    assert normalize_url("/a.jpg", "https://cdn.example.com/X") == "https://cdn.example.com/X/a.jpg"
    assert (
        normalize_url("/a b.jpg", "https://cdn.example.com") == "https://cdn.example.com/a%20b.jpg"
    )


@given(st.text(max_size=80))
def test_normalized_urls_are_safe_and_stable(path: str) -> None:
    """Whatever follows a valid host is escaped, never refused."""
    url = normalize_url("https://example.com/" + path)
    assert set(url) <= URL_CHARACTERS
    assert normalize_url(url) == url


def test_identity_of_urls_as_written() -> None:
    """The docstring's own example, on URLs that were not normalized first."""
    assert identity_key("http://example.com:80/a#top") == identity_key("https://example.com/a")
    assert identity_key("https://example.com:443/a") == "//example.com/a"
    assert identity_key("https://example.com:80/a") == "//example.com:80/a"


def test_identity_ignores_scheme_case_default_port_and_fragment() -> None:
    same = [
        "https://example.com/a?x=1",
        "http://EXAMPLE.com:80/a?x=1#top",
        "https://example.com:443/a?x=1",
    ]
    assert len({identity_key(normalize_url(url)) for url in same}) == 1
    assert len({entry_id(normalize_url(url)) for url in same}) == 1
    assert identity_key("https://example.com/a?x=1") != identity_key("https://example.com/a?x=2")


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://example.com/caf%c3%a9", "//example.com/caf%C3%A9"),
        ("https://example.com/a%2fb?q=%3a%5B", "//example.com/a%2Fb?q=%3A%5B"),
        ("https://example.com/x?q=%aA&r=%Bb", "//example.com/x?q=%AA&r=%BB"),
        ("https://example.com/%41%42?q=%7E", "//example.com/%41%42?q=%7E"),
        ("https://example.com:8443/a#top", "//example.com:8443/a"),
    ],
)
def test_identity_key_upper_cases_percent_escapes(url: str, key: str) -> None:
    """RFC 3986 §6.2.2.1: `%c3` and `%C3` are the same octet, so the same article and id."""
    assert identity_key(url) == key
    escapes = re.compile(r"%[0-9A-Fa-f]{2}")
    upper = escapes.sub(lambda match: match.group(0).upper(), url)
    lower = escapes.sub(lambda match: match.group(0).lower(), url)
    assert entry_id(upper) == entry_id(lower) == entry_id(url)


def test_entry_id_is_a_stable_urn() -> None:
    # Pinned: changing the scheme would change every published id.
    assert entry_id("https://example.com/a") == "urn:uuid:3168a74a-6b6f-5484-8fc8-2d606c4a4555"


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("https://x.example/a.jpg", "image/jpeg"),
        ("https://x.example/a.JPEG?w=1", "image/jpeg"),
        ("https://x.example/a.png", "image/png"),
        ("https://x.example/a.webp", "image/webp"),
        ("https://x.example/a.gif", "image/gif"),
        ("https://x.example/pic?width=1200&format=jpeg", "image/jpeg"),
        ("https://x.example/pic?fm=webp", "image/webp"),
        ("https://x.example/pic?Format=PNG", "image/png"),
        ("https://images.wsj.net/im-138654/social", None),
        ("https://x.example/pic?format=image/png", "image/png"),  # a media type, not a name
        ("https://x.example/pic#a.png", None),  # the fragment is not the file
        ("https://x.example/images/png", None),  # a segment named like a type, with no dot
        ("https://x.example/a.php?id=1", None),
    ],
)
def test_image_media_type(url: str, media_type: str | None) -> None:
    assert image_media_type(url) == media_type


@settings(max_examples=500)
@given(
    st.sampled_from(["https://example.com/", "http://a.b/", "https://X.com/", "https://a.b"]),
    st.text(st.sampled_from("aZ09-._~!$&'()*+,;=:@/?%#[] éA;"), max_size=40),
)
def test_the_fast_path_returns_what_the_full_path_would(head: str, tail: str) -> None:
    url = head + tail
    if is_safe_url(url):
        assert normalize_in_full(url) == url


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a", "https://example.com/?a=1&b=2", "https://x.example/%41?q=%2f"],
)
def test_clean_urls_take_the_fast_path(url: str) -> None:
    assert is_safe_url(url)


@settings(max_examples=1000)
@given(
    st.sampled_from(
        ["https://example.com", "http://a.b", "https://X.com", "https://a.b:443", "HTTP://a.b"]
    ),
    st.lists(
        st.sampled_from([*"aZ09-._~!$&'()*+,;=:@/?%#[] \t\x00é", "%2f", "%2F", "%e9", "/a", "?"]),
        max_size=20,
    ).map("".join),
)
def test_the_identity_key_fast_path_is_exact(head: str, tail: str) -> None:
    """A plain URL's identity key is taken by slicing; any URL gets the key urlsplit gives."""
    url = head + tail
    try:
        expected = identity_key_in_full(url)
    except ValueError:  # urlsplit refuses it (a bad port, say): the fast path must not take it
        with pytest.raises(ValueError):
            identity_key(url)
        return
    assert identity_key(url) == expected


def test_plain_urls_take_the_identity_key_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(url: str) -> str:
        raise AssertionError(f"{url} took the full path")

    monkeypatch.setattr("feedsvc.urls.identity_key_in_full", refused)
    plain = ["https://example.com/a?b=1&c=d", "http://x.example", "https://a.b/c/d.html"]
    plain.append("https://example.com/share?u=https://b.example/c")  # a second "://", kept
    for url in plain:
        assert identity_key(url) == "//" + url.partition("://")[2]
