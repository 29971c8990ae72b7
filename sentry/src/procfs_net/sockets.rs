//! The socket files of /proc/net.

use super::{hex4, hex6, padded, Entry};
use abi::socket::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM};
use netstack::{SockAddr, SockState, SocketInfo, UnixAddr};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Linux's TCP state numbers (TCP_ESTABLISHED = 1, ...).
fn tcp_state(st: SockState) -> u8 {
    match st {
        SockState::Established | SockState::Connected => 0x01,
        SockState::SynSent => 0x02,
        SockState::FinWait => 0x05,
        SockState::Close => 0x07,
        SockState::CloseWait => 0x08,
        SockState::Listen => 0x0a,
    }
}

/// The (address, port) of an inet socket address of the wanted family.
fn endpoint(a: &Option<SockAddr>, v6: bool) -> (String, u16) {
    match (a, v6) {
        (Some(SockAddr::Inet(a)), false) => (hex4(*a.ip()), a.port()),
        (Some(SockAddr::Inet6(a)), true) => (hex6(*a.ip()), a.port()),
        (_, false) => (hex4(Ipv4Addr::UNSPECIFIED), 0),
        (_, true) => (hex6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

fn is_family(info: &SocketInfo, v6: bool) -> bool {
    info.family == if v6 { AF_INET6 } else { AF_INET }
}

/// /proc/net/tcp and tcp6: listening sockets first, then connections
/// (Linux's two hash tables); closed sockets are in neither.
pub fn tcp(sockets: &[Entry], v6: bool) -> String {
    let mut s = String::new();
    if v6 {
        s.push_str(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        );
    } else {
        padded(
            &mut s,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            149,
        );
    }
    let tcp: Vec<&Entry> = sockets
        .iter()
        .filter(|(_, i)| is_family(i, v6) && i.sock_type == SOCK_STREAM && matches!(i.protocol, 0 | IPPROTO_TCP))
        .filter(|(_, i)| i.state != SockState::Close)
        .collect();
    let listening = tcp.iter().filter(|(_, i)| i.state == SockState::Listen);
    let connected = tcp.iter().filter(|(_, i)| i.state != SockState::Listen);
    for (n, (ino, i)) in listening.chain(connected).enumerate() {
        let (src, sport) = endpoint(&i.local, v6);
        let (dst, dport) = endpoint(&i.peer, v6);
        // rto, ato, quick-ack/pingpong, cwnd, ssthresh (or fastopen queue).
        let tail = if i.state == SockState::Listen { "100 0 0 10 0" } else { "20 4 30 10 -1" };
        let line = format!(
            "{n:4}: {src}:{sport:04X} {dst}:{dport:04X} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {ino} 1 {:016x} {tail}",
            tcp_state(i.state),
            i.tx_queue,
            i.rx_queue,
            i.uid,
            0,
            0
        );
        if v6 {
            s.push_str(&line);
            s.push('\n');
        } else {
            padded(&mut s, &line, 149);
        }
    }
    s
}

/// /proc/net/udp and udp6: bound sockets, by hash slot of the port.
pub fn udp(sockets: &[Entry], v6: bool) -> String {
    let mut s = String::new();
    if v6 {
        s.push_str(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
        );
    } else {
        padded(
            &mut s,
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
            127,
        );
    }
    let mut udp: Vec<&Entry> = sockets
        .iter()
        .filter(|(_, i)| is_family(i, v6) && i.sock_type == SOCK_DGRAM && matches!(i.protocol, 0 | IPPROTO_UDP))
        .filter(|(_, i)| endpoint(&i.local, v6).1 != 0)
        .collect();
    // The hash table has 256 slots at least; a slot is the port's low bits.
    let slot = |i: &SocketInfo| endpoint(&i.local, v6).1 & 0xff;
    udp.sort_by_key(|(_, i)| slot(i));
    for (ino, i) in udp {
        let (src, sport) = endpoint(&i.local, v6);
        let (dst, dport) = endpoint(&i.peer, v6);
        let st = if i.state == SockState::Connected { 0x01 } else { 0x07 };
        let line = format!(
            "{:5}: {src}:{sport:04X} {dst}:{dport:04X} {st:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {ino} 2 {:016x} 0",
            slot(i),
            i.tx_queue,
            i.rx_queue,
            i.uid,
            0,
            0
        );
        if v6 {
            s.push_str(&line);
            s.push('\n');
        } else {
            padded(&mut s, &line, 127);
        }
    }
    s
}

/// /proc/net/unix: every unix socket, with its path when it has a name
/// (abstract names start with '@', their NULs shown as '@').
pub fn unix(sockets: &[Entry]) -> String {
    let mut s = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    for (ino, i) in sockets.iter().filter(|(_, i)| i.family == AF_UNIX) {
        let listening = i.state == SockState::Listen;
        let (refs, st) = match i.state {
            SockState::Established | SockState::Connected | SockState::FinWait | SockState::CloseWait => (3, 3),
            SockState::SynSent => (2, 2),
            SockState::Close | SockState::Listen => (2, 1),
        };
        let flags = if listening { 0x0001_0000 } else { 0 };
        let _ = write!(s, "{:016x}: {refs:08X} {:08X} {flags:08X} {:04X} {st:02X} {ino:5}", 0, 0, i.sock_type);
        match &i.local {
            Some(SockAddr::Unix(UnixAddr::Path(p))) => {
                s.push(' ');
                s.push_str(&String::from_utf8_lossy(p));
            }
            Some(SockAddr::Unix(UnixAddr::Abstract(n))) => {
                s.push_str(" @");
                let shown: Vec<u8> = n.iter().map(|&c| if c == 0 { b'@' } else { c }).collect();
                s.push_str(&String::from_utf8_lossy(&shown));
            }
            _ => {}
        }
        s.push('\n');
    }
    s
}

/// /proc/net/netlink: bound netlink sockets.
pub fn netlink(sockets: &[Entry]) -> String {
    let mut s =
        String::from("sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n");
    let mut nl: Vec<&Entry> = sockets.iter().filter(|(_, i)| i.family == AF_NETLINK).collect();
    nl.sort_by_key(|(_, i)| i.protocol);
    for (ino, i) in nl {
        let Some(SockAddr::Netlink { pid, groups }) = i.local else { continue };
        if pid == 0 {
            continue;
        }
        let _ = writeln!(
            s,
            "{:016x} {:<3} {:<10} {:08x} {:<8} {:<8} {:<5} {:<8} {:<8} {:<8}",
            0, i.protocol, pid, groups, i.rx_queue, i.tx_queue, 0, 2, 0, ino
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    fn inet(ip: [u8; 4], port: u16) -> Option<SockAddr> {
        Some(SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    }

    fn info(
        family: i32,
        sock_type: i32,
        state: SockState,
        local: Option<SockAddr>,
        peer: Option<SockAddr>,
    ) -> SocketInfo {
        SocketInfo { family, sock_type, protocol: 0, local, peer, state, rx_queue: 0, tx_queue: 0, uid: 1000 }
    }

    #[test]
    fn tcp_lines() {
        let listen = info(AF_INET, SOCK_STREAM, SockState::Listen, inet([0, 0, 0, 0], 2024), None);
        let conn = SocketInfo {
            rx_queue: 5,
            ..info(
                AF_INET,
                SOCK_STREAM,
                SockState::Established,
                inet([127, 0, 0, 1], 40000),
                inet([127, 0, 0, 1], 2024),
            )
        };
        let closed = info(AF_INET, SOCK_STREAM, SockState::Close, None, None);
        let text = tcp(&[(7, conn), (5, listen), (9, closed)], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == 149));
        assert!(lines[0].starts_with(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode "
        ));
        assert_eq!(
            lines[1].trim_end(),
            "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5 1 0000000000000000 100 0 0 10 0"
        );
        assert_eq!(
            lines[2].trim_end(),
            "   1: 0100007F:9C40 0100007F:07E8 01 00000000:00000005 00:00000000 00000000  1000        0 7 1 0000000000000000 20 4 30 10 -1"
        );
        // Only IPv6 sockets in tcp6, with the address as four words.
        let v6 = info(
            AF_INET6,
            SOCK_STREAM,
            SockState::Listen,
            Some(SockAddr::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 0, 0))),
            None,
        );
        let text = tcp(&[(3, v6.clone())], true);
        assert_eq!(text.lines().nth(1), Some("   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 100 0 0 10 0"));
        assert_eq!(tcp(&[(3, v6)], false).lines().count(), 1);
    }

    #[test]
    fn udp_lines() {
        let bound = info(AF_INET, SOCK_DGRAM, SockState::Close, inet([127, 0, 0, 1], 53), None);
        let unbound = info(AF_INET, SOCK_DGRAM, SockState::Close, None, None);
        let conn =
            info(AF_INET, SOCK_DGRAM, SockState::Connected, inet([127, 0, 0, 1], 0x1234), inet([127, 0, 0, 1], 53));
        let text = udp(&[(4, bound), (5, unbound), (6, conn)], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == 127));
        assert!(lines[0].starts_with("   sl  local_address rem_address   st tx_queue rx_queue tr"));
        assert_eq!(
            lines[1].trim_end(),
            "   52: 0100007F:1234 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 6 2 0000000000000000 0"
        );
        assert_eq!(
            lines[2].trim_end(),
            "   53: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4 2 0000000000000000 0"
        );
        let text = udp(&[], true);
        assert!(text.starts_with("  sl  local_address                         remote_address "));
    }

    #[test]
    fn unix_and_netlink_lines() {
        let path = Some(SockAddr::Unix(UnixAddr::Path(b"/tmp/s".to_vec())));
        let abs = Some(SockAddr::Unix(UnixAddr::Abstract(b"a\0b".to_vec())));
        let socks = [
            (10, info(AF_UNIX, SOCK_STREAM, SockState::Listen, path, None)),
            (11, info(AF_UNIX, SOCK_DGRAM, SockState::Connected, abs, None)),
            (12, info(AF_UNIX, 5, SockState::Close, None, None)),
        ];
        assert_eq!(
            unix(&socks),
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000000000000: 00000002 00000000 00010000 0001 01    10 /tmp/s\n\
             0000000000000000: 00000003 00000000 00000000 0002 03    11 @a@b\n\
             0000000000000000: 00000002 00000000 00000000 0005 01    12\n"
        );
        let nl = info(AF_NETLINK, 3, SockState::Close, Some(SockAddr::Netlink { pid: 42, groups: 1 }), None);
        let unbound = info(AF_NETLINK, 3, SockState::Close, Some(SockAddr::Netlink { pid: 0, groups: 0 }), None);
        assert_eq!(
            netlink(&[(20, nl), (21, unbound)]),
            "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
             0000000000000000 0   42         00000001 0        0        0     2        0        20      \n"
        );
    }
}
