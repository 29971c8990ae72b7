//! The sandbox's resolver: the DNS answers the guest gets from
//! [`DNS_V4`]:53 under `--network=sandbox`.
//!
//! The guest has no path to the host's resolver, and must not have one:
//! a name the policy refuses must not resolve (NXDOMAIN), so that a guest
//! learns nothing about the host's network from its DNS. The Sentry hands
//! each query datagram to the egress broker as it came; the broker asks
//! the policy and the host's resolver, and this module turns its verdict
//! into the answer datagram. Only A, AAAA and ANY questions of class IN
//! get addresses; everything else is an empty answer or an error code.
//!
//! The query is hostile guest bytes: every read is checked, nothing is
//! sized by a length the guest wrote, and a malformed query gets FORMERR
//! rather than a guess at what it meant.

use netstack::egress::proto::{DNS_V4, MAX_PAYLOAD};
use std::net::IpAddr;

/// What the broker knows about a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name exists: its addresses (any mix of v4/v6; the responder
    /// picks the family the query asked for).
    Found(Vec<IpAddr>),
    /// Not allowed or does not exist: NXDOMAIN.
    NoSuchName,
    /// Resolution failed on the host: SERVFAIL.
    Failed,
}

const HEADER: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
/// Short, so a guest sees a change of the host's answers (or of the
/// policy's) soon, as Docker's embedded resolver does.
const TTL: u32 = 60;
/// The answer size a client without EDNS0 accepts (RFC 1035, 4.2.1).
const CLASSIC_UDP: usize = 512;
/// An OPT record without options: root name, type, class, TTL, RDLENGTH.
const OPT_LEN: usize = 11;

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
/// Extended rcode (RFC 6891): an EDNS version we do not speak.
const BADVERS: u16 = 16;

/// The question of a query, as far as it parsed.
struct Question<'a> {
    /// QNAME, QTYPE and QCLASS as the guest wrote them: echoed verbatim.
    wire: &'a [u8],
    /// The name lower-cased without the trailing dot; None when some label
    /// holds a byte outside printable ASCII or a dot, which no host name
    /// has and which would make the string name something else.
    name: Option<String>,
    qtype: u16,
    qclass: u16,
}

/// The EDNS0 OPT record of a query (RFC 6891, 6.1.2).
#[derive(Clone, Copy)]
struct Edns {
    payload: u16,
    version: u8,
}

/// The answer to one DNS query datagram, or None when it deserves no answer
/// (shorter than a header, or a response rather than a query).
/// `lookup` gets the question's name lower-cased without the trailing dot
/// (e.g. "example.org"); it is called at most once, and only for class IN
/// questions; their A (1), AAAA (28) or ANY (255) questions get its
/// addresses, other types the empty NOERROR answer (NODATA) when the name
/// exists. Names under in-addr.arpa and ip6.arpa (PTR lookups), and names
/// no host has, get NXDOMAIN without a call; the root name, NODATA.
///
/// A class other than IN is REFUSED (not NOTIMP): a resolver then tries
/// its next server rather than taking the class as unsupported anywhere.
/// Without EDNS0 the answer fits 512 bytes; with it, the query's payload
/// size up to [`MAX_PAYLOAD`], and the answer carries an OPT record.
/// Addresses that do not fit are dropped and TC is set.
pub fn respond(query: &[u8], lookup: impl FnOnce(&str) -> Lookup) -> Option<Vec<u8>> {
    let hdr: &[u8; HEADER] = query.get(..HEADER)?.try_into().ok()?;
    if hdr[2] & 0x80 != 0 {
        return None;
    }
    let opcode = (hdr[2] >> 3) & 0x0f;
    let count = |i: usize| u16::from_be_bytes([hdr[i], hdr[i + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let parsed = if qdcount == 1 { parse_question(query) } else { None };
    let question = parsed.as_ref().map(|(q, _)| q);
    let edns = parsed.as_ref().and_then(|(_, end)| find_opt(query, *end, ancount, nscount, arcount));
    let reply = Reply { id: [hdr[0], hdr[1]], opcode, rd: hdr[2] & 0x01, edns };

    if opcode != 0 {
        return Some(reply.build(NOTIMP, question, &[]));
    }
    let Some(q) = question else {
        return Some(reply.build(FORMERR, None, &[]));
    };
    if edns.is_some_and(|e| e.version != 0) {
        return Some(reply.build(BADVERS, Some(q), &[]));
    }
    if q.qclass != CLASS_IN {
        return Some(reply.build(REFUSED, Some(q), &[]));
    }
    let Some(name) = q.name.as_deref() else {
        return Some(reply.build(NXDOMAIN, Some(q), &[]));
    };
    // The guest's addresses are its own (and the host's are none of its
    // business): no reverse names are served.
    let reverse = ["in-addr.arpa", "ip6.arpa"]
        .iter()
        .any(|zone| name == *zone || name.strip_suffix(zone).is_some_and(|n| n.ends_with('.')));
    if reverse {
        return Some(reply.build(NXDOMAIN, Some(q), &[]));
    }
    if name.is_empty() {
        return Some(reply.build(NOERROR, Some(q), &[]));
    }
    Some(match lookup(name) {
        Lookup::Found(addrs) => {
            let wanted = |a: &&IpAddr| match q.qtype {
                TYPE_A => a.is_ipv4(),
                TYPE_AAAA => a.is_ipv6(),
                TYPE_ANY => true,
                _ => false,
            };
            let answers: Vec<IpAddr> = addrs.iter().filter(wanted).copied().collect();
            reply.build(NOERROR, Some(q), &answers)
        }
        Lookup::NoSuchName => reply.build(NXDOMAIN, Some(q), &[]),
        Lookup::Failed => reply.build(SERVFAIL, Some(q), &[]),
    })
}

/// The /etc/resolv.conf the sandbox gets when its resolver is on.
pub fn resolv_conf() -> String {
    format!("# Written by runsc-lite: the sandbox's resolver (--network=sandbox).\nnameserver {DNS_V4}\n")
}

/// The one question after the header and the offset just past it, or None
/// when it is cut short or its name is malformed: a compression pointer
/// (which a query's first name has nothing to point back to), an extended
/// label type, or a name longer than 255 bytes.
fn parse_question(query: &[u8]) -> Option<(Question<'_>, usize)> {
    let mut pos = HEADER;
    let mut name = String::new();
    let mut plain = true;
    loop {
        let len = usize::from(*query.get(pos)?);
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = query.get(pos + 1..pos + 1 + len)?;
        pos += 1 + len;
        // The length bytes and the root's zero count too (RFC 1035, 3.1).
        if pos + 1 - HEADER > 255 {
            return None;
        }
        plain &= label.iter().all(|&b| b.is_ascii_graphic() && b != b'.');
        if plain {
            if !name.is_empty() {
                name.push('.');
            }
            name.extend(label.iter().map(|&b| char::from(b.to_ascii_lowercase())));
        }
    }
    let fixed = query.get(pos..pos + 4)?;
    let q = Question {
        wire: query.get(HEADER..pos + 4)?,
        name: plain.then_some(name),
        qtype: u16::from_be_bytes([*fixed.first()?, *fixed.get(1)?]),
        qclass: u16::from_be_bytes([*fixed.get(2)?, *fixed.get(3)?]),
    };
    Some((q, pos + 4))
}

/// The first OPT record of the additional section, found by walking the
/// records after the question; None when there is none or the records are
/// malformed (the query is then answered as one without EDNS0).
fn find_opt(query: &[u8], mut pos: usize, ancount: u16, nscount: u16, arcount: u16) -> Option<Edns> {
    let before = usize::from(ancount) + usize::from(nscount);
    // Each record takes at least 11 bytes, so this ends at the packet's end.
    for i in 0..before + usize::from(arcount) {
        let root = query.get(pos) == Some(&0);
        pos = skip_name(query, pos)?;
        let fixed = query.get(pos..pos + 10)?;
        let field = |at: usize| Some(u16::from_be_bytes([*fixed.get(at)?, *fixed.get(at + 1)?]));
        if i >= before && root && field(0)? == TYPE_OPT {
            return Some(Edns { payload: field(2)?, version: *fixed.get(5)? });
        }
        pos += 10 + usize::from(field(8)?);
    }
    None
}

/// The offset past the name at `pos` (labels, maybe ending in a pointer).
fn skip_name(query: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *query.get(pos)?;
        match len & 0xc0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

/// What every answer to one query shares.
struct Reply {
    id: [u8; 2],
    opcode: u8,
    rd: u8,
    edns: Option<Edns>,
}

impl Reply {
    /// The answer datagram: the header (QR, the query's opcode and RD, RA;
    /// never AA, since the answers are the host's), the question echoed,
    /// as many of `answers` as fit (TC set when some did not), and an OPT
    /// record when the query had one.
    fn build(&self, rcode: u16, question: Option<&Question<'_>>, answers: &[IpAddr]) -> Vec<u8> {
        let limit = self.edns.map_or(CLASSIC_UDP, |e| usize::from(e.payload).clamp(CLASSIC_UDP, MAX_PAYLOAD));
        let room = limit - self.edns.map_or(0, |_| OPT_LEN);
        let mut out = Vec::with_capacity(limit);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&[0x80 | (self.opcode << 3) | self.rd, 0x80 | (rcode & 0x0f) as u8]);
        out.extend_from_slice(&[0; 8]);
        if let Some(q) = question {
            out.extend_from_slice(q.wire);
        }
        let mut ancount: u16 = 0;
        let mut truncated = false;
        for addr in answers {
            let (rtype, rdata) = match addr {
                IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
                IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
            };
            if out.len() + 12 + rdata.len() > room || ancount == u16::MAX {
                truncated = true;
                break;
            }
            // The owner is a pointer to the question's name, at offset 12.
            out.extend_from_slice(&[0xc0, 0x0c]);
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
            ancount += 1;
        }
        if self.edns.is_some() {
            let ext_rcode = (rcode >> 4) as u8;
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&(MAX_PAYLOAD as u16).to_be_bytes());
            out.extend_from_slice(&[ext_rcode, 0, 0, 0, 0, 0]);
        }
        let set = |out: &mut Vec<u8>, at: usize, v: u16| {
            if let Some(f) = out.get_mut(at..at + 2) {
                f.copy_from_slice(&v.to_be_bytes());
            }
        };
        set(&mut out, 4, u16::from(question.is_some()));
        set(&mut out, 6, ancount);
        set(&mut out, 10, u16::from(self.edns.is_some()));
        if truncated {
            if let Some(flags) = out.get_mut(2) {
                *flags |= 0x02;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A query: header (id, flags, QDCOUNT 1), then `name` as labels.
    fn query(id: u16, flags: u16, name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&flags.to_be_bytes());
        q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&qclass.to_be_bytes());
        q
    }

    /// `q` with an EDNS0 OPT record of `payload` bytes and `version`.
    fn with_opt(mut q: Vec<u8>, payload: u16, version: u8) -> Vec<u8> {
        q[11] += 1;
        q.push(0);
        q.extend_from_slice(&TYPE_OPT.to_be_bytes());
        q.extend_from_slice(&payload.to_be_bytes());
        q.extend_from_slice(&[0, version, 0x80, 0, 0, 0]);
        q
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn both() -> Lookup {
        Lookup::Found(vec![ip("192.0.2.1"), ip("2001:db8::1")])
    }

    fn rcode(r: &[u8]) -> u8 {
        r[3] & 0x0f
    }

    fn ancount(r: &[u8]) -> u16 {
        u16::from_be_bytes([r[6], r[7]])
    }

    #[test]
    fn a_answer_byte_exact() {
        let q = query(0x1234, 0x0100, "example.org", TYPE_A, CLASS_IN);
        let r = respond(&q, |n| {
            assert_eq!(n, "example.org");
            both()
        })
        .unwrap();
        let mut want = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        want.extend_from_slice(&q[12..]);
        want.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        assert_eq!(r, want);
    }

    #[test]
    fn aaaa_and_any_answer_the_asked_family() {
        let r = respond(&query(7, 0, "example.org", TYPE_AAAA, CLASS_IN), |_| both()).unwrap();
        assert_eq!((r[2], r[3], ancount(&r)), (0x80, 0x80, 1));
        assert_eq!(&r[r.len() - 28..r.len() - 16], &[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        assert_eq!(&r[r.len() - 16..], &"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        let r = respond(&query(7, 0x0100, "example.org", TYPE_ANY, CLASS_IN), |_| both()).unwrap();
        assert_eq!((rcode(&r), ancount(&r)), (0, 2));
        assert_eq!(r.len(), 12 + 17 + 16 + 28);
    }

    #[test]
    fn nxdomain_servfail_and_nodata() {
        let q = query(9, 0x0100, "blocked.example", TYPE_A, CLASS_IN);
        let r = respond(&q, |_| Lookup::NoSuchName).unwrap();
        assert_eq!((r[2], rcode(&r), ancount(&r), &r[12..]), (0x81, 3, 0, &q[12..]));
        assert_eq!(rcode(&respond(&q, |_| Lookup::Failed).unwrap()), 2);
        // The name exists, but not with the asked family or type.
        let r = respond(&q, |_| Lookup::Found(vec![ip("2001:db8::1")])).unwrap();
        assert_eq!((rcode(&r), ancount(&r), r.len()), (0, 0, q.len()));
        let r = respond(&query(9, 0, "example.org", 15, CLASS_IN), |_| both()).unwrap();
        assert_eq!((rcode(&r), ancount(&r)), (0, 0));
    }

    #[test]
    fn names_never_looked_up() {
        let never = |n: &str| -> Lookup { panic!("looked up {n:?}") };
        for name in ["1.2.0.192.in-addr.arpa", "in-addr.arpa", "1.0.ip6.arpa", "IN-ADDR.ARPA."] {
            assert_eq!(rcode(&respond(&query(1, 0, name, 12, CLASS_IN), never).unwrap()), 3, "{name}");
        }
        // A dot or a space inside a label, a NUL, a non-ASCII byte.
        for label in [&b"a.b"[..], b"a b", b"a\0", b"\xc3\xa9t\xc3\xa9"] {
            let mut q = query(1, 0, "", TYPE_A, CLASS_IN);
            q.splice(12..12, [&[label.len() as u8], label].concat());
            assert_eq!(rcode(&respond(&q, never).unwrap()), 3, "{label:?}");
        }
        let r = respond(&query(1, 0, ".", TYPE_A, CLASS_IN), never).unwrap();
        assert_eq!((rcode(&r), ancount(&r)), (0, 0));
        let r = respond(&query(1, 0, "example.org", TYPE_A, 3), never).unwrap();
        assert_eq!(rcode(&r), 5);
    }

    #[test]
    fn case_folding() {
        let mut asked = String::new();
        let q = query(1, 0, "ExAmple.ORG.", TYPE_A, CLASS_IN);
        let r = respond(&q, |n| {
            asked = n.to_string();
            both()
        })
        .unwrap();
        assert_eq!(asked, "example.org");
        // The question comes back as the guest spelt it (0x20 randomisation).
        assert_eq!(&r[12..q.len()], &q[12..]);
    }

    #[test]
    fn formerr() {
        let never = |n: &str| -> Lookup { panic!("looked up {n:?}") };
        let mut q = query(5, 0x0100, "example.org", TYPE_A, CLASS_IN);
        q[5] = 2;
        assert_eq!(respond(&q, never).unwrap(), vec![0, 5, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
        // "www" then a pointer back to the header.
        let mut q = query(5, 0, "www", TYPE_A, CLASS_IN);
        q.splice(16..17, [0xc0, 0x00]);
        assert_eq!(respond(&q, never).unwrap(), vec![0, 5, 0x80, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(rcode(&respond(&query(5, 0, &long, TYPE_A, CLASS_IN), never).unwrap()), 1);
        let q = query(5, 0, "example.org", TYPE_A, CLASS_IN);
        assert_eq!(rcode(&respond(&q[..q.len() - 1], never).unwrap()), 1);
    }

    #[test]
    fn notimp_for_opcode_1() {
        let q = query(6, 0x0900, "example.org", TYPE_A, CLASS_IN);
        let r = respond(&q, |n| -> Lookup { panic!("looked up {n:?}") }).unwrap();
        assert_eq!(&r[..4], &[0, 6, 0x89, 0x84]);
        assert_eq!((u16::from_be_bytes([r[4], r[5]]), &r[12..]), (1, &q[12..]));
    }

    #[test]
    fn no_answer_to_responses_or_short_input() {
        let q = query(6, 0x8100, "example.org", TYPE_A, CLASS_IN);
        assert_eq!(respond(&q, |_| both()), None);
        assert_eq!(respond(&[0, 1, 0, 0, 0], |_| both()), None);
        assert_eq!(respond(&[], |_| both()), None);
    }

    #[test]
    fn truncation() {
        let many: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([198, 51, 100, i])).collect();
        let q = query(8, 0x0100, "example.org", TYPE_A, CLASS_IN);
        let r = respond(&q, |_| Lookup::Found(many.clone())).unwrap();
        assert_eq!((r[2] & 0x02, ancount(&r)), (0x02, 30));
        assert!(r.len() <= 512);
        // EDNS0 with room for all of them: no TC, and an OPT record back.
        let r = respond(&with_opt(q.clone(), 1232, 0), |_| Lookup::Found(many.clone())).unwrap();
        assert_eq!((r[2] & 0x02, ancount(&r), &r[10..12]), (0, 40, &[0, 1][..]));
        assert_eq!(&r[r.len() - OPT_LEN..], &[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        // A payload size below 512 means 512.
        let r = respond(&with_opt(q.clone(), 100, 0), |_| Lookup::Found(many.clone())).unwrap();
        assert_eq!((r[2] & 0x02, ancount(&r)), (0x02, 29));
        // EDNS version 1: BADVERS (extended rcode 16), no lookup.
        let r = respond(&with_opt(q, 4096, 1), |_| panic!("looked up")).unwrap();
        assert_eq!((rcode(&r), r[r.len() - 6]), (0, 1));
    }

    #[test]
    fn resolv_conf_names_our_resolver() {
        let conf = resolv_conf();
        assert!(conf.starts_with("# "), "{conf}");
        assert!(conf.ends_with("\nnameserver 10.0.2.3\n"), "{conf}");
    }

    /// Any answer is to the query it got: its id, QR set.
    fn check(q: &[u8], r: Option<Vec<u8>>) -> Result<(), TestCaseError> {
        if let Some(r) = r {
            prop_assert!(r.len() >= HEADER && r.len() <= MAX_PAYLOAD);
            prop_assert_eq!(&r[..2], &q[..2]);
            prop_assert_eq!(r[2] & 0x80, 0x80);
        } else {
            prop_assert!(q.len() < HEADER || q[2] & 0x80 != 0);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(q in proptest::collection::vec(any::<u8>(), 0..600)) {
            let r = respond(&q, |_| both());
            check(&q, r)?;
        }

        #[test]
        fn mutated_queries(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            opt in any::<bool>(),
        ) {
            let mut q = query(0xbeef, 0x0100, "www.example.org", TYPE_ANY, CLASS_IN);
            if opt {
                q = with_opt(q, 4096, 0);
            }
            for (at, b) in edits {
                let i = at.index(q.len());
                q[i] = b;
            }
            q.truncate(cut.index(q.len() + 1).max(q.len() / 2));
            let r = respond(&q, |_| Lookup::Found(vec![ip("192.0.2.1"); 300]));
            check(&q, r)?;
        }
    }
}
