"""The private-address guard: the address checked is the address connected to.

* The classifier, for every range the guard refuses (and a few public addresses).
* The resolver (:class:`crawler.guard.GuardedResolver`) with a canned lookup:
  one lookup per use, a failed lookup never cached nor a pass, the verdict
  recomputed from the cached addresses, a refusal delivered as an address that
  can only fail with ``private``.
* Redirects: a real crawl whose allowed loopback host redirects to a private
  name and to private literals; nothing is fetched there.
* DNS rebinding, as the issue found it: in a network namespace with only
  loopback, a fake DNS server fails the first query for a name, then answers
  127.0.0.6; ``check-links`` must refuse the source (``private``), store no
  text, and send nothing to 127.0.0.6.
* robots.txt of an unreachable host: one reason, no traceback.

The crawls run in child processes (this file run as a script, or the CLI);
every server listens on 127.0.0.0/8, and the namespace has nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.task import Clock
from twisted.python.failure import Failure

import crawler.guard as guard
from crawler.addresses import non_public
from crawler.failures import error_kind
from crawler.guard import GuardedResolver, Policy, PrivateAddressRefused

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
REBIND_NAME = "news.rebind-test.net"

REFUSED = {
    "127.0.0.1": "loopback",
    "127.0.0.6": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.10.1": "link-local",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "100.64.0.1": "non-public",  # carrier-grade NAT
    "240.0.0.1": "private",  # reserved
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "private",  # a cloud's IPv6 metadata address
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped cloud metadata",
    "64:ff9b::7f00:1": "NAT64 of loopback 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 of cloud metadata 169.254.169.254",
    "64:ff9b::808:808": "NAT64 of 8.8.8.8",
    "64:ff9b:1::1": "local-use NAT64",
    "2002:7f00:1::1": "6to4 of loopback 127.0.0.1",
    "2002:a00:1::1": "6to4 of private 10.0.0.1",
    "2002:808:808::1": "6to4 of 8.8.8.8",
    "::127.0.0.1": "IPv4-compatible of loopback 127.0.0.1",
    "::10.0.0.1": "IPv4-compatible of private 10.0.0.1",
    "::ffff:0:127.0.0.1": "IPv4-translated of loopback 127.0.0.1",
    "::ffff:0:10.0.0.1": "IPv4-translated of private 10.0.0.1",
    "fec0::1": "site-local",
    "feff::1": "site-local",
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", list(REFUSED))
def test_non_public_addresses_are_named(address):
    assert non_public(address) is not None
    assert non_public(address).startswith(REFUSED[address])


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert non_public(address) is None


def test_what_is_not_an_address_is_refused():
    with pytest.raises(ValueError):
        non_public("not-an-address")
    assert guard.refusal("h", ["999.1.1.1"]).startswith("private address: h is 999.1.1.1")
    assert guard.refusal("h", ["8.8.8.8", "10.0.0.1"]).startswith("private address: h is 10.0.0.1")
    assert guard.refusal("h", ["8.8.8.8", "2606:4700::1111"]) is None


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("127.1", None),
        ("0177.0.0.1", None),
        ("localhost", None),
        ("example.com", None),
    ],
)
def test_literals_are_read_as_twisted_connects_to_them(host, address):
    # "127.1" and "0177.0.0.1" are no literals to Twisted: they go to the resolver, which refuses them.
    assert guard.literal_address(host) == address


# -- the resolver, with a canned lookup --------------------------------------


class SyncPool:
    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        try:
            result, ok = f(*args, **kwargs), True
        except Exception:  # noqa: BLE001 - handed to the Deferred, as a thread pool does
            result, ok = Failure(), False
        on_result(ok, result)


class FakeReactor(Clock):
    def getThreadPool(self):
        return SyncPool()

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class Answers:
    """A DNS that fails the first lookup of a name, then answers; it counts the lookups."""

    def __init__(self, answers: dict[str, list[str]], fail_first: bool = True):
        self.answers = answers
        self.fail_first = fail_first
        self.calls: list[str] = []

    def __call__(self, name):
        self.calls.append(name)
        if self.fail_first and self.calls.count(name) == 1:
            raise DNSLookupError(f"{name}: temporary failure")
        if name not in self.answers:
            raise DNSLookupError(f"{name}: no such name")
        return self.answers[name]


def outcome(d: defer.Deferred):
    box = []
    d.addBoth(box.append)
    assert box, "the lookup did not finish"
    return box[0]


class Receiver:
    def __init__(self):
        self.addresses = []
        self.complete = False

    def resolutionBegan(self, resolution):
        pass

    def addressResolved(self, address):
        self.addresses.append(address)

    def resolutionComplete(self):
        self.complete = True


@pytest.fixture
def resolver(monkeypatch):
    answers = Answers({REBIND_NAME: ["127.0.0.6"], "public.example.net": ["93.184.215.14", "2606:4700::1"]})
    monkeypatch.setattr(guard, "lookup", answers)
    policy = Policy()
    r = GuardedResolver(FakeReactor(), cache_size=100, timeout=0, policy=policy)
    r.answers = answers
    return r


def test_a_lookup_that_fails_once_is_never_a_pass(resolver):
    first = outcome(resolver.getHostByName(REBIND_NAME))
    assert isinstance(first, Failure) and first.check(DNSLookupError)  # no verdict: no address either
    second = outcome(resolver.getHostByName(REBIND_NAME))
    assert isinstance(second, Failure) and second.check(PrivateAddressRefused)
    assert error_kind(second)[0] == "private"
    assert resolver.answers.calls == [REBIND_NAME, REBIND_NAME]  # the failure was not cached
    third = outcome(resolver.getHostByName(REBIND_NAME))  # from the cache: the same addresses, checked again
    assert third.check(PrivateAddressRefused) and resolver.answers.calls == [REBIND_NAME] * 2


def test_the_endpoint_gets_the_checked_addresses_or_one_that_can_only_fail(resolver):
    receiver = Receiver()
    resolver.resolveHostName(receiver, REBIND_NAME, 80)
    assert receiver.complete and receiver.addresses == []  # a DNS failure: HostnameEndpoint says "dns"
    receiver = Receiver()
    resolver.resolveHostName(receiver, REBIND_NAME, 80)
    [marker] = receiver.addresses
    assert marker.host.endswith(".invalid") and marker.port == 80  # never 127.0.0.6
    # Connecting to the marker asks reactor.resolver (this resolver): it fails with the refusal, once.
    refused = outcome(resolver.getHostByName(marker.host))
    assert refused.check(PrivateAddressRefused)
    assert error_kind(refused) == ("private", refused.getErrorMessage())
    assert f"{REBIND_NAME} is 127.0.0.6 (loopback)" in refused.getErrorMessage()
    again = outcome(resolver.getHostByName(marker.host))
    assert again.check(DNSLookupError)  # a special-use name: nothing to connect to
    receiver = Receiver()
    resolver.resolveHostName(receiver, "public.example.net", 443)
    receiver2 = Receiver()
    resolver.resolveHostName(receiver2, "public.example.net", 443)  # the first lookup failed
    assert receiver2.addresses == [
        IPv4Address("TCP", "93.184.215.14", 443),
        IPv6Address("TCP", "2606:4700::1", 443),
    ]
    receiver3 = Receiver()
    resolver.resolveHostName(receiver3, "public.example.net", 443, addressTypes=[IPv4Address])
    assert receiver3.addresses == [IPv4Address("TCP", "93.184.215.14", 443)]


def test_hosts_the_user_chose_pass_while_their_crawl_is_open(resolver):
    outcome(resolver.getHostByName(REBIND_NAME))  # the failing first lookup
    resolver.policy.add({REBIND_NAME}, everything=False)
    assert outcome(resolver.getHostByName(REBIND_NAME)) == "127.0.0.6"
    resolver.policy.remove({REBIND_NAME}, everything=False)
    assert outcome(resolver.getHostByName(REBIND_NAME)).check(
        PrivateAddressRefused
    )  # cached, not its verdict
    resolver.policy.add(set(), everything=True)  # ALLOW_PRIVATE
    assert outcome(resolver.getHostByName(REBIND_NAME)) == "127.0.0.6"


def test_a_fault_in_the_check_is_a_refusal(resolver, monkeypatch):
    def broken(host, addresses):
        raise RuntimeError("classifier broke")

    monkeypatch.setattr(guard, "refusal", broken)
    resolver.answers.fail_first = False
    receiver = Receiver()
    resolver.resolveHostName(receiver, "public.example.net", 443)
    [marker] = receiver.addresses
    refused = outcome(resolver.getHostByName(marker.host))
    assert error_kind(refused)[0] == "private" and "could not be checked" in refused.getErrorMessage()
    assert error_kind(outcome(resolver.getHostByName("public.example.net")))[0] == "private"


def test_special_use_names_never_ask_dns(resolver):
    for name in ("a.invalid", "news.test", "www.example", "invalid"):
        assert outcome(resolver.getHostByName(name)).check(DNSLookupError)
        receiver = Receiver()
        resolver.resolveHostName(receiver, name)
        assert receiver.complete and receiver.addresses == []
    assert resolver.answers.calls == []


def test_literals_reaching_the_resolver_are_checked_too(resolver):
    receiver = Receiver()
    resolver.resolveHostName(receiver, "169.254.169.254", 80)
    assert [a.host.endswith(".invalid") for a in receiver.addresses] == [True]
    assert outcome(resolver.getHostByName("10.0.0.1")).check(PrivateAddressRefused)
    assert resolver.answers.calls == []


def test_the_proxies_of_the_environment_may_be_connected_to(monkeypatch):
    from scrapy.settings import Settings

    from crawler.middlewares import proxy_hosts

    monkeypatch.setenv("http_proxy", "http://10.9.8.7:3128")
    monkeypatch.setenv("no_proxy", "localhost")
    assert proxy_hosts(Settings({"HTTPPROXY_ENABLED": True})) == {"10.9.8.7"}
    assert proxy_hosts(Settings({"HTTPPROXY_ENABLED": False})) == set()


# -- real crawls --------------------------------------------------------------


def run_script(mode: str, folder: Path, *prefix: str, timeout=240) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [*prefix, sys.executable, str(HERE), mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=folder,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_redirect_from_an_allowed_host_to_a_private_address_is_refused(tmp_path):
    result = run_script("redirect", tmp_path)
    assert result["outcomes"]["/fine"] == ["ok", "200"]
    for path in ("/to-name", "/to-literal", "/to-mapped", "/to-metadata"):
        kind, detail = result["outcomes"][path]
        assert kind == "private" and detail.startswith("private address"), (path, detail)
    assert result["outcomes"]["/to-name"][1].startswith("private address: localhost is 127.0.0.1")
    assert result["target_requests"] == []  # nothing reached the redirect targets


def namespaces_allowed() -> str | None:
    """Why the namespace test cannot run here, or None."""
    for tool in ("unshare", "mount"):
        if not shutil.which(tool):
            return f"no {tool} command (util-linux)"
    probe = ["unshare", "-rnm", "mount", "--bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    proc = subprocess.run(probe, capture_output=True, text=True)
    if proc.returncode != 0:
        why = proc.stderr.strip() or proc.returncode
        return f"user, network and mount namespaces with a bind mount are not allowed here ({why})"
    return None


def test_dns_rebinding_in_a_loopback_only_namespace_is_refused(tmp_path):
    why = namespaces_allowed()
    if why:
        pytest.skip(why)
    result = run_script("netns", tmp_path, "unshare", "-rnm", timeout=300)
    # The fake DNS failed the first queries for the name, then answered 127.0.0.6, as a rebinding one would.
    assert result["dns"]["failed"] >= 1 and result["dns"]["answered"] >= 1, result["dns"]
    assert result["checks"], result
    for error, detail in result["checks"]:
        assert error == "private", result
        assert f"{REBIND_NAME} is 127.0.0.6" in detail
    assert result["source_texts"] == 0
    assert result["rebound_requests"] == []  # the server at 127.0.0.6 was never asked anything
    assert result["status"] == ["blocked"]
    assert "Traceback" not in result["stderr"]


def test_an_unreachable_robots_txt_is_one_reason_not_a_traceback(tmp_path):
    result = run_script("robots", tmp_path)
    assert "Traceback" not in result["stderr"], result["stderr"][-3000:]
    assert result["checks"] and all(error == "refused" for error, _ in result["checks"]), result["checks"]


# -- the scenarios, run as child processes ------------------------------------




def _archive(server) -> None:
    server.answer = lambda path: (200, {"Content-Type": "application/json"}, b'{"archived_snapshots": {}}')


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], capture_output=True, text=True, cwd=folder, timeout=200
    )


def _mirror_and_check(folder: Path, sources: list[str], *check_args: str) -> tuple[Path, str]:
    """Mirror a one-event site citing ``sources``, then ``check-links`` them; the stderr of both."""
    from crawler.loopback.site import SiteServer
    from crawler.testing.sitegen import write_citing_site

    site = SiteServer(write_citing_site(folder, sources))
    archive = SiteServer(folder, host="127.0.0.1")
    _archive(archive)
    db = folder / "mirror.db"
    fast = [
        "-s",
        "SOURCE_DELAY=0",
        "-s",
        "DOWNLOAD_TIMEOUT=5",
        "-s",
        f"WAYBACK_API_URL={archive.origin}/wayback",
    ]
    try:
        run = _cli(
            folder,
            "run",
            "--db",
            str(db),
            "--start-url",
            site.url("news/2013/03/27/index.md"),
            "-s",
            "CHECK_SOURCES=False",
            "--json",
        )
        assert run.returncode == 0, run.stderr[-3000:]
        check = _cli(folder, "check-links", "--db", str(db), "--json", *fast, *check_args)
        assert check.returncode == 0, check.stderr[-3000:]
    finally:
        site.close()
        archive.close()
    return db, run.stderr + check.stderr


def _checks(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(row) for row in conn.execute("SELECT error, note FROM link_checks ORDER BY id")]
    finally:
        conn.close()


def scenario_robots(folder: Path) -> dict:
    with socket.socket() as sock:  # a host where nothing listens
        sock.bind(("127.0.0.5", 0))
        down = f"http://127.0.0.5:{sock.getsockname()[1]}"
    db, stderr = _mirror_and_check(folder, [f"{down}/story", f"{down}/other"], "--allow-private")
    return {"stderr": stderr, "checks": _checks(db)}


class FakeDNS:
    """A UDP DNS server on 127.0.0.53:53: SERVFAIL for the first query of each (name, type), then answers.

    ``REBIND_NAME`` answers A 127.0.0.6 (and no AAAA); every other name is NXDOMAIN.
    """

    def __init__(self, address: str = "127.0.0.53"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.seen: set[tuple[str, int]] = set()
        self.log = {"failed": 0, "answered": 0, "queries": []}
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            reply = self.answer(query)
            if reply:
                self.sock.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, flags = struct.unpack(">HH", query[:4])
        labels, i = [], 12
        while i < len(query) and query[i]:
            labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii", "replace"))
            i += 1 + query[i]
        question = query[12 : i + 5]
        qtype = struct.unpack(">H", query[i + 1 : i + 3])[0]
        name = ".".join(labels).lower()
        self.log["queries"].append([name, qtype])
        rd = flags & 0x0100
        answers = b""
        if (name, qtype) not in self.seen:
            self.seen.add((name, qtype))
            rcode, count = 2, 0  # SERVFAIL: the flaky first answer
            self.log["failed"] += 1
        elif name == REBIND_NAME:
            rcode, count = 0, 0
            if qtype == 1:  # A
                answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton("127.0.0.6")
                count = 1
                self.log["answered"] += 1
        else:
            rcode, count = 3, 0  # NXDOMAIN
        header = struct.pack(">HHHHHH", ident, 0x8000 | 0x0080 | rd | rcode, 1, count, 0, 0)
        return header + question + answers

    def close(self):
        self.sock.close()


def _loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2 (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP)."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))


def scenario_netns(folder: Path) -> dict:
    """In ``unshare -rnm``: loopback up, the fake DNS as the only resolver, then mirror and check."""
    from crawler.loopback.site import SiteServer

    _loopback_up()
    conf = folder / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", str(conf), "/etc/resolv.conf"], check=True)
    dns = FakeDNS()
    rebound = SiteServer(folder, host="127.0.0.6")  # what the name points at: must never be asked
    rebound.routes["/story"] = [
        (200, {"Content-Type": "text/html"}, b"<html><title>Leaked</title>secret</html>")
    ]
    port = rebound.origin.rsplit(":", 1)[1]
    try:
        db, stderr = _mirror_and_check(folder, [f"http://{REBIND_NAME}:{port}/story"])
    finally:
        rebound.close()
        dns.close()
    conn = sqlite3.connect(db)
    try:
        texts = conn.execute("SELECT count(*) FROM source_texts").fetchone()[0]
        status = [row[0] for row in conn.execute("SELECT status FROM sources")]
    finally:
        conn.close()
    return {
        "dns": dns.log,
        "checks": _checks(db),
        "source_texts": texts,
        "status": status,
        "rebound_requests": rebound.requests,
        "stderr": stderr,
    }


def scenario_redirect(folder: Path) -> dict:
    """A spider whose chosen host (127.0.0.1) redirects to private places, with the project's stack."""
    from scrapy import Request, Spider
    from scrapy.crawler import AsyncCrawlerProcess

    from crawler.loopback.site import SiteServer
    from crawler.runner import project_settings

    origin = SiteServer(folder)
    targets = [SiteServer(folder, host="127.0.0.1"), SiteServer(folder, host="127.0.0.7")]
    local_port = targets[0].origin.rsplit(":", 1)[1]
    other_port = targets[1].origin.rsplit(":", 1)[1]
    origin.routes.update(
        {
            "/fine": [(200, {}, b"fine")],
            "/to-name": [(302, {"Location": f"http://localhost:{local_port}/secret"}, b"")],
            "/to-literal": [(302, {"Location": f"http://127.0.0.7:{other_port}/secret"}, b"")],
            "/to-mapped": [(302, {"Location": f"http://[::ffff:127.0.0.7]:{other_port}/secret"}, b"")],
            "/to-metadata": [(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")],
        }
    )
    outcomes: dict[str, list[str]] = {}

    class RedirectProbe(Spider):
        name = "redirect-probe"
        allowed_private_hosts = {"127.0.0.1"}

        async def start(self):
            for path in ("/fine", "/to-name", "/to-literal", "/to-mapped", "/to-metadata"):
                yield Request(
                    origin.origin + path, cb_kwargs={"path": path}, errback=self.failed, dont_filter=True
                )

        def parse(self, response, path):
            outcomes[path] = ["ok", str(response.status)]

        def failed(self, failure):
            outcomes[failure.request.cb_kwargs["path"]] = list(error_kind(failure))

    settings = project_settings(
        {
            "ITEM_PIPELINES": {},
            "EXTENSIONS": {},
            "ROBOTSTXT_OBEY": False,
            "DOWNLOAD_TIMEOUT": 5,
            "LOG_LEVEL": "ERROR",
        }
    )
    process = AsyncCrawlerProcess(settings)
    process.crawl(RedirectProbe)
    process.start()
    for server in (origin, *targets):
        server.close()
    return {"outcomes": outcomes, "target_requests": targets[0].requests + targets[1].requests}


if __name__ == "__main__":
    mode, where = sys.argv[1], Path(sys.argv[2])
    scenarios = {"netns": scenario_netns, "redirect": scenario_redirect, "robots": scenario_robots}
    print(json.dumps(scenarios[mode](where)))
