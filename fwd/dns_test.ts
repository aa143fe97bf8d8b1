import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import type { Ctx } from "../ctx.ts";
import { configDefaults } from "../conf/config.ts";
import type { Config } from "../conf/config.ts";
import { confDns, confDnsForward, confDnsHost, confSearch } from "../conf/_addr_opts.ts";
import { dnsConf, parseResolvConf } from "./dns.ts";

function ctx(): Ctx {
  const c = ctxNew(15);
  c.ip4.enabled = true;
  c.ip6.enabled = true;
  c.ip4.gateway.set([198, 51, 100, 1]);
  c.ip4.mapHostLoopback.set([198, 51, 100, 1]);
  c.ip6.gateway.set([0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  c.ip6.mapHostLoopback.set(c.ip6.gateway);
  return c;
}

function pasta(f: (c: Config) => void = () => {}): Config {
  const c = configDefaults("pasta");
  f(c);
  return c;
}

const v4 = (a: Uint8Array) => [...a].join(".");

Deno.test("parseResolvConf() reads nameservers, the first search line, and skips comments", () => {
  const r = parseResolvConf(
    "; c\n# nameserver 9.9.9.9\nnameserver 192.0.2.1 # x\nnameserver\tfe80::1%eth0\n" +
      "domain ignored.example\nsearch a.example b.example\nsearch c.example\nnameserver ::1\n",
  );
  assert.deepEqual(r.nameservers, ["192.0.2.1", "fe80::1", "::1"]);
  assert.deepEqual(r.search, ["a.example", "b.example"]);
  assert.deepEqual(parseResolvConf(""), { nameservers: [], search: [] });
});

Deno.test("dnsConf(): --dns-forward and the first nameserver of each family as --dns-host", () => {
  const c = ctx();
  const conf = pasta((k) => {
    confDnsForward(k, "169.254.1.1");
    confDnsForward(k, "fd00::53");
  });
  dnsConf(
    c,
    conf,
    () => "nameserver 203.0.113.10\nnameserver 203.0.113.11\nnameserver 2001:db8:2::10\n",
  );
  assert.equal(v4(c.ip4.dnsMatch), "169.254.1.1");
  assert.equal(v4(c.ip4.dnsHost), "203.0.113.10");
  assert.equal(c.ip6.dnsMatch[0], 0xfd);
  assert.equal(c.ip6.dnsHost[1], 1);
  assert.equal(c.ip6.dnsHost[15], 0x10);
  /* pasta announces nothing without --dhcp-dns / --dhcp-search */
  assert.deepEqual(c.dns4, []);
  assert.deepEqual(c.dns6, []);
  assert.deepEqual(c.dnsSearch, []);
});

Deno.test("dnsConf(): --dns-host wins over resolv.conf", () => {
  const c = ctx();
  const conf = pasta((k) => {
    confDnsForward(k, "169.254.1.1");
    confDnsHost(k, "192.0.2.53");
  });
  dnsConf(c, conf, () => "nameserver 203.0.113.10\n");
  assert.equal(v4(c.ip4.dnsHost), "192.0.2.53");
});

Deno.test("dnsConf(): a loopback nameserver is announced as the gateway, which then forwards DNS", () => {
  const c = ctx();
  const conf = pasta((k) => {
    k.dhcpDns = true;
    k.dhcpSearch = true;
  });
  dnsConf(c, conf, () => "nameserver 127.0.0.53\nnameserver ::1\nsearch example.org\n");
  assert.equal(v4(c.ip4.dnsHost), "127.0.0.53");
  assert.equal(v4(c.ip4.dnsMatch), "198.51.100.1");
  assert.deepEqual(c.dns4.map(v4), ["198.51.100.1"]);
  assert.deepEqual([...c.dns6[0]!], [...c.ip6.gateway]);
  assert.deepEqual([...c.ip6.dnsMatch], [...c.ip6.gateway]);
  assert.deepEqual(c.dnsSearch, ["example.org"]);
});

Deno.test("dnsConf(): -D and -S replace the host's, at most three per family", () => {
  const c = ctx();
  const conf = pasta((k) => {
    k.dhcpDns = true;
    k.dhcpSearch = true;
    for (const a of ["192.0.2.1", "192.0.2.2", "2001:db8::1"]) confDns(k, a);
    confSearch(k, "one.example");
  });
  dnsConf(
    c,
    conf,
    () => "nameserver 203.0.113.10\nnameserver 2001:db8:2::10\nsearch host.example\n",
  );
  assert.deepEqual(c.dns4.map(v4), ["192.0.2.1", "192.0.2.2"]);
  assert.equal(c.dns6.length, 1);
  assert.equal(c.dns6[0]![15], 1);
  assert.deepEqual(c.dnsSearch, ["one.example"]);
  /* the resolver for --dns-forward still comes from resolv.conf */
  assert.equal(v4(c.ip4.dnsHost), "203.0.113.10");
  const c2 = ctx();
  dnsConf(
    c2,
    pasta((k) => {
      k.dhcpDns = true;
    }),
    () =>
      "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n",
  );
  assert.equal(c2.dns4.length, 3);
});

Deno.test("dnsConf(): -D none and -S none announce nothing; a missing resolv.conf is no error", () => {
  const c = ctx();
  const conf = pasta((k) => {
    k.dhcpDns = true;
    k.dhcpSearch = true;
    confDns(k, "none");
    confSearch(k, "none");
  });
  dnsConf(c, conf, () => "nameserver 203.0.113.10\nsearch x.example\n");
  assert.deepEqual(c.dns4, []);
  assert.deepEqual(c.dnsSearch, []);
  const c2 = ctx();
  dnsConf(c2, pasta(), () => null);
  assert.equal(v4(c2.ip4.dnsHost), "0.0.0.0");
});
