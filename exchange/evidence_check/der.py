"""DER, just enough for an RFC 3161 token: the parts of the checkpoint's timestamp token
that ``anchor`` checks. Standard library only."""

# ruff: noqa: UP017
# (the checker runs on Python 3.8+, away from DocGate: no 3.10+ idioms)

from __future__ import annotations

import datetime as dt


class Der:
    """One DER element: ``tag``, ``raw`` (the whole TLV) and ``body`` (the content)."""

    def __init__(self, data, pos=0, limit=None):
        limit = len(data) if limit is None else limit
        if pos + 2 > limit:
            raise ValueError("truncated DER")
        tag, length, start = data[pos], data[pos + 1], pos + 2
        if tag & 0x1F == 0x1F:
            raise ValueError("unsupported DER tag")
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 4 or start + count > limit:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[start : start + count], "big")
            start += count
        if start + length > limit:
            raise ValueError("truncated DER")
        self.tag, self.raw = tag, data[pos : start + length]
        self.body, self.end = data[start : start + length], start + length

    def children(self):
        out, pos = [], 0
        while pos < len(self.body):
            child = Der(self.body, pos)
            out.append(child)
            pos = child.end
        return out

    def expect(self, tag, what):
        if self.tag != tag:
            raise ValueError(what + ": unexpected DER tag")
        return self


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for n in parts[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


OID_SIGNED_DATA = der_oid("1.2.840.113549.1.7.2")
OID_TST_INFO = der_oid("1.2.840.113549.1.9.16.1.4")
OID_CONTENT_TYPE = der_oid("1.2.840.113549.1.9.3")
OID_MESSAGE_DIGEST = der_oid("1.2.840.113549.1.9.4")
OID_RSASSA_PSS = der_oid("1.2.840.113549.1.1.10")
DIGESTS = {
    der_oid("2.16.840.1.101.3.4.2." + n): name
    for n, name in (("1", "sha256"), ("2", "sha384"), ("3", "sha512"))
}


def parse_token(der):
    """The parts of an RFC 3161 token that the checks below need."""
    info = Der(der).expect(0x30, "ContentInfo").children()
    if info[0].expect(0x06, "contentType").body != OID_SIGNED_DATA:
        raise ValueError("not a CMS SignedData")
    signed = info[1].expect(0xA0, "content").children()[0].expect(0x30, "SignedData")
    parts = signed.children()
    encap = parts[2].expect(0x30, "encapContentInfo").children()
    if encap[0].body != OID_TST_INFO:
        raise ValueError("does not hold a TSTInfo")
    tst_der = encap[1].expect(0xA0, "eContent").children()[0].expect(0x04, "eContent").body
    tst = Der(tst_der).expect(0x30, "TSTInfo").children()
    imprint = tst[2].expect(0x30, "messageImprint").children()
    gen_time = tst[4].expect(0x18, "genTime").body.decode("ascii")
    certs = [p for p in parts[3:-1] if p.tag == 0xA0]
    certificates = [c.raw for c in certs[0].children() if c.tag == 0x30] if certs else []
    signer_infos = parts[-1].expect(0x31, "signerInfos").children()
    if len(signer_infos) != 1:
        raise ValueError("not exactly one SignerInfo")
    si = signer_infos[0].expect(0x30, "SignerInfo").children()
    attrs = si[3].expect(0xA0, "signedAttrs")
    found = {}
    for attr in attrs.children():
        oid, values = attr.children()[:2]
        found[oid.body] = values.children()[0]
    return {
        "imprint_algorithm": imprint[0].children()[0].body,
        "imprint": imprint[1].expect(0x04, "hashedMessage").body,
        "gen_time": gen_time,
        "tst_der": tst_der,
        "certificates": certificates,
        "sid": si[1],
        "digest_algorithm": si[2].children()[0].body,
        "signed_attrs": b"\x31" + attrs.raw[1:],  # signed as a SET OF
        "content_type": found.get(OID_CONTENT_TYPE),
        "message_digest": found.get(OID_MESSAGE_DIGEST),
        "signature_algorithm": si[4].expect(0x30, "signatureAlgorithm").children()[0].body,
        "signature": si[5].expect(0x04, "signature").body,
    }


def parse_gen_time(text):
    digits = text.rstrip("Z").split(".")[0]
    if not text.endswith("Z") or len(digits) != 14:
        raise ValueError("genTime is not GeneralizedTime in UTC")
    return dt.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
