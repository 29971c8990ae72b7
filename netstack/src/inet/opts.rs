//! Options at the IP, IPv6 and TCP levels, with Linux's ranges, defaults
//! and errnos, and `struct tcp_info`. SOL_SOCKET options are
//! [`crate::opts::SockOpts`]; the sockets answer the few that depend on
//! their state.

use crate::opts::int;
use abi::socket::*;
use abi::Errno;

/// net.ipv4.ip_default_ttl and the IPv6 hop limit of `lo`.
pub const DEFAULT_TTL: i32 = 64;
/// Maximum segment size of an unconnected socket (TCP_MSS_DEFAULT).
pub const MSS_DEFAULT: u32 = 536;
/// The loopback MTU, and MSS on it (less IP, TCP and timestamp headers).
pub const LO_MTU: u32 = 65536;
pub const MSS_V4: u32 = LO_MTU - 20 - 20 - 12;
pub const MSS_V6: u32 = LO_MTU - 40 - 20 - 12;

const IPV6_RECVHOPLIMIT: i32 = 51;
const IPV6_HOPLIMIT: i32 = 52;
const IPV6_RECVTCLASS: i32 = 66;
const IP_RECVOPTS: i32 = 6;
const IP_RETOPTS: i32 = 7;
const IP_FREEBIND: i32 = 15;
const IP_MULTICAST_ALL: i32 = 49;
const IP_BIND_ADDRESS_NO_PORT: i32 = 24;
const IPV6_ADD_MEMBERSHIP: i32 = 20;
const IPV6_DROP_MEMBERSHIP: i32 = 21;
const IPV6_MTU_DISCOVER: i32 = 23;
const IPV6_RECVERR: i32 = 25;

/// getsockopt at a level the socket does not serve: ip_getsockopt says
/// EOPNOTSUPP, ipv6_getsockopt ENOPROTOOPT (setsockopt says ENOPROTOOPT
/// for both).
pub fn unknown_level(family: i32) -> Errno {
    if family == AF_INET6 {
        Errno::ENOPROTOOPT
    } else {
        Errno::EOPNOTSUPP
    }
}

/// IP and IPv6 level options of one socket.
#[derive(Clone, Debug)]
pub struct IpOpts {
    pub tos: u8,
    /// -1: the default.
    pub ttl: i32,
    pub recvtos: bool,
    pub recvttl: bool,
    pub pktinfo: bool,
    pub recverr: bool,
    pub recvopts: bool,
    pub retopts: bool,
    pub mtu_discover: i32,
    pub freebind: bool,
    pub bind_no_port: bool,
    pub mc_ttl: i32,
    pub mc_loop: bool,
    pub mc_all: bool,
    pub v6only: bool,
    pub hops: i32,
    pub mc_hops: i32,
    pub mc_loop6: bool,
    pub tclass: i32,
    pub recvpktinfo6: bool,
    pub recvtclass: bool,
    pub recvhoplimit: bool,
    pub recverr6: bool,
    pub mtu_discover6: i32,
}

impl Default for IpOpts {
    fn default() -> Self {
        IpOpts {
            tos: 0,
            ttl: -1,
            recvtos: false,
            recvttl: false,
            pktinfo: false,
            recverr: false,
            recvopts: false,
            retopts: false,
            mtu_discover: 1, // IP_PMTUDISC_WANT
            freebind: false,
            bind_no_port: false,
            mc_ttl: 1,
            mc_loop: true,
            mc_all: true,
            v6only: false,
            hops: -1,
            mc_hops: 1,
            mc_loop6: true,
            tclass: 0,
            recvpktinfo6: false,
            recvtclass: false,
            recvhoplimit: false,
            recverr6: false,
            mtu_discover6: 1,
        }
    }
}

/// Linux reads a byte-sized option from an int, or from one byte when
/// only one is given (ip_setsockopt's "optlen >= sizeof(int)" rule).
fn int_or_byte(val: &[u8]) -> Result<i32, Errno> {
    match val {
        [] => Err(Errno::EINVAL),
        [b] => Ok(i32::from(*b)),
        _ => int(val),
    }
}

fn boolean(val: &[u8]) -> Result<bool, Errno> {
    Ok(int_or_byte(val)? != 0)
}

fn out(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

impl IpOpts {
    /// SOL_IP option of a socket of type `sock_type`.
    pub fn set_ip(&mut self, sock_type: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        match name {
            IP_TOS => {
                let v = int_or_byte(val)? as u8;
                // TCP keeps the ECN bits to itself.
                self.tos = if sock_type == SOCK_STREAM { (v & !3) | (self.tos & 3) } else { v };
            }
            IP_TTL => {
                let v = int(val)?;
                if v != -1 && !(1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.ttl = v;
            }
            IP_RECVTOS => self.recvtos = boolean(val)?,
            IP_RECVTTL => self.recvttl = boolean(val)?,
            IP_PKTINFO => self.pktinfo = boolean(val)?,
            IP_RECVERR => self.recverr = boolean(val)?,
            // No packet ever carries IP options here.
            IP_RECVOPTS => self.recvopts = boolean(val)?,
            IP_RETOPTS => self.retopts = boolean(val)?,
            IP_FREEBIND => self.freebind = boolean(val)?,
            IP_BIND_ADDRESS_NO_PORT => self.bind_no_port = boolean(val)?,
            IP_MTU_DISCOVER => {
                let v = int_or_byte(val)?;
                if !(0..=5).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.mtu_discover = v;
            }
            IP_MULTICAST_TTL => {
                if sock_type == SOCK_STREAM {
                    return Err(Errno::EINVAL);
                }
                let v = int_or_byte(val)?;
                let v = if v == -1 { 1 } else { v };
                if !(0..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.mc_ttl = v;
            }
            IP_MULTICAST_LOOP => self.mc_loop = boolean(val)?,
            IP_MULTICAST_ALL => self.mc_all = boolean(val)?,
            IP_MULTICAST_IF | IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP => {
                // Accepted (no multicast routing exists in the sandbox);
                // Linux needs at least a struct in_addr.
                if val.len() < 4 {
                    return Err(Errno::EINVAL);
                }
            }
            IP_OPTIONS => {
                if val.len() > 40 {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    pub fn get_ip(&self, name: i32) -> Result<Vec<u8>, Errno> {
        Ok(match name {
            IP_TOS => out(i32::from(self.tos)),
            IP_TTL => out(if self.ttl < 0 { DEFAULT_TTL } else { self.ttl }),
            IP_RECVTOS => out(i32::from(self.recvtos)),
            IP_RECVTTL => out(i32::from(self.recvttl)),
            IP_PKTINFO => out(i32::from(self.pktinfo)),
            IP_RECVERR => out(i32::from(self.recverr)),
            IP_RECVOPTS => out(i32::from(self.recvopts)),
            IP_RETOPTS => out(i32::from(self.retopts)),
            IP_FREEBIND => out(i32::from(self.freebind)),
            IP_BIND_ADDRESS_NO_PORT => out(i32::from(self.bind_no_port)),
            IP_MTU_DISCOVER => out(self.mtu_discover),
            IP_MULTICAST_TTL => out(self.mc_ttl),
            IP_MULTICAST_LOOP => out(i32::from(self.mc_loop)),
            IP_MULTICAST_ALL => out(i32::from(self.mc_all)),
            IP_MULTICAST_IF => out(0),
            IP_OPTIONS => Vec::new(),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// SOL_IPV6 option; `bound` says whether the socket has a port
    /// (IPV6_V6ONLY is fixed from then on).
    pub fn set_ipv6(&mut self, bound: bool, name: i32, val: &[u8]) -> Result<(), Errno> {
        match name {
            IPV6_V6ONLY => {
                let v = int(val)?;
                if bound {
                    return Err(Errno::EINVAL);
                }
                self.v6only = v != 0;
            }
            IPV6_UNICAST_HOPS => {
                let v = int(val)?;
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.hops = v;
            }
            IPV6_MULTICAST_HOPS => {
                let v = int(val)?;
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.mc_hops = if v == -1 { 1 } else { v };
            }
            IPV6_MULTICAST_LOOP => {
                let v = int(val)?;
                if !(0..=1).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.mc_loop6 = v != 0;
            }
            IPV6_TCLASS => {
                let v = int(val)?;
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.tclass = v.max(0);
            }
            IPV6_RECVPKTINFO => self.recvpktinfo6 = int(val)? != 0,
            IPV6_RECVTCLASS => self.recvtclass = int(val)? != 0,
            IPV6_RECVHOPLIMIT => self.recvhoplimit = int(val)? != 0,
            IPV6_RECVERR => self.recverr6 = int(val)? != 0,
            IPV6_MTU_DISCOVER => {
                let v = int(val)?;
                if !(0..=5).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.mtu_discover6 = v;
            }
            IPV6_MULTICAST_IF => {
                int(val)?;
            }
            IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP => {
                if val.len() < 20 {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    pub fn get_ipv6(&self, name: i32) -> Result<Vec<u8>, Errno> {
        Ok(match name {
            IPV6_V6ONLY => out(i32::from(self.v6only)),
            IPV6_UNICAST_HOPS => out(if self.hops < 0 { DEFAULT_TTL } else { self.hops }),
            IPV6_MULTICAST_HOPS => out(self.mc_hops),
            IPV6_MULTICAST_LOOP => out(i32::from(self.mc_loop6)),
            IPV6_TCLASS => out(self.tclass),
            IPV6_RECVPKTINFO => out(i32::from(self.recvpktinfo6)),
            IPV6_RECVTCLASS => out(i32::from(self.recvtclass)),
            IPV6_RECVHOPLIMIT => out(i32::from(self.recvhoplimit)),
            IPV6_RECVERR => out(i32::from(self.recverr6)),
            IPV6_MTU_DISCOVER => out(self.mtu_discover6),
            IPV6_MULTICAST_IF => out(0),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// The TTL / hop limit packets leave with.
    pub fn out_ttl(&self, v6: bool) -> i32 {
        let v = if v6 { self.hops } else { self.ttl };
        if v < 0 {
            DEFAULT_TTL
        } else {
            v
        }
    }

    /// Control messages a datagram socket of `family` asked for, for a
    /// datagram from `src` to `dst` (canonical) with `tos` and `ttl`.
    pub fn recv_control(&self, family: i32, dst: std::net::IpAddr, tos: u8, ttl: i32) -> Vec<crate::socket::Control> {
        use crate::socket::Control;
        use std::net::IpAddr;
        let mut v = Vec::new();
        match dst {
            IpAddr::V4(d) if family == AF_INET => {
                if self.pktinfo {
                    // struct in_pktinfo: ifindex, spec_dst, addr.
                    let mut data = 1i32.to_ne_bytes().to_vec();
                    data.extend_from_slice(&d.octets());
                    data.extend_from_slice(&d.octets());
                    v.push(Control::Raw { level: SOL_IP, typ: IP_PKTINFO, data });
                }
                if self.recvttl {
                    v.push(Control::Raw { level: SOL_IP, typ: IP_TTL, data: ttl.to_ne_bytes().to_vec() });
                }
                if self.recvtos {
                    v.push(Control::Raw { level: SOL_IP, typ: IP_TOS, data: vec![tos] });
                }
            }
            d => {
                let d6 = match d {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                if self.recvpktinfo6 {
                    // struct in6_pktinfo: addr, ifindex.
                    let mut data = d6.octets().to_vec();
                    data.extend_from_slice(&1i32.to_ne_bytes());
                    v.push(Control::Raw { level: SOL_IPV6, typ: IPV6_PKTINFO, data });
                }
                if self.recvhoplimit {
                    v.push(Control::Raw { level: SOL_IPV6, typ: IPV6_HOPLIMIT, data: ttl.to_ne_bytes().to_vec() });
                }
                if self.recvtclass {
                    v.push(Control::Raw {
                        level: SOL_IPV6,
                        typ: IPV6_TCLASS,
                        data: i32::from(tos).to_ne_bytes().to_vec(),
                    });
                }
            }
        }
        v
    }
}

/// sendmsg's per-datagram TTL and TOS: IP_TTL/IP_TOS control messages on
/// an AF_INET socket (checked as ip_cmsg_send), IPV6_HOPLIMIT/IPV6_TCLASS
/// on an AF_INET6 one (as ip6_datagram_send_ctl; -1 keeps the socket's
/// value). Other control messages are left alone.
pub fn send_control(family: i32, control: &[crate::socket::Control], tos: &mut u8, ttl: &mut i32) -> Result<(), Errno> {
    let as_int = |data: &[u8]| -> Result<i32, Errno> {
        let b: [u8; 4] = data.try_into().map_err(|_| Errno::EINVAL)?;
        Ok(i32::from_ne_bytes(b))
    };
    for c in control {
        let crate::socket::Control::Raw { level, typ, data } = c else { continue };
        match (family, *level, *typ) {
            (AF_INET, SOL_IP, IP_TTL) => {
                let v = as_int(data)?;
                if !(1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                *ttl = v;
            }
            (AF_INET, SOL_IP, IP_TOS) => {
                let v = if data.len() == 1 { i32::from(data[0]) } else { as_int(data)? };
                *tos = u8::try_from(v).map_err(|_| Errno::EINVAL)?;
            }
            (AF_INET6, SOL_IPV6, IPV6_HOPLIMIT) => match as_int(data)? {
                -1 => {}
                v @ 0..=255 => *ttl = v,
                _ => return Err(Errno::EINVAL),
            },
            (AF_INET6, SOL_IPV6, IPV6_TCLASS) => match as_int(data)? {
                -1 => {}
                v @ 0..=255 => *tos = v as u8,
                _ => return Err(Errno::EINVAL),
            },
            _ => {}
        }
    }
    Ok(())
}

/// TCP level options.
#[derive(Clone, Debug)]
pub struct TcpOpts {
    pub nodelay: bool,
    pub cork: bool,
    pub keepidle: i32,
    pub keepintvl: i32,
    pub keepcnt: i32,
    pub user_mss: u32,
    pub user_timeout: i32,
    pub quickack: bool,
    pub defer_accept: i32,
    pub syncnt: i32,
    pub linger2: i32,
    pub window_clamp: i32,
    pub notsent_lowat: i32,
    pub fastopen: i32,
    pub congestion: &'static str,
}

impl Default for TcpOpts {
    fn default() -> Self {
        TcpOpts {
            nodelay: false,
            cork: false,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            user_mss: 0,
            user_timeout: 0,
            quickack: true,
            defer_accept: 0,
            syncnt: 6,
            linger2: 60,
            window_clamp: 0,
            notsent_lowat: 0,
            fastopen: 0,
            congestion: "cubic",
        }
    }
}

/// What TCP_CONGESTION offers (tcp_available_congestion_control).
const CONGESTION: &[&str] = &["cubic", "reno"];
/// TCP_CA_NAME_MAX.
const CA_NAME_MAX: usize = 16;

impl TcpOpts {
    pub fn set(&mut self, name: i32, val: &[u8]) -> Result<(), Errno> {
        if name == TCP_CONGESTION {
            let end = val.iter().position(|&b| b == 0).unwrap_or(val.len()).min(CA_NAME_MAX - 1);
            let want = val.get(..end).unwrap_or_default();
            let found = CONGESTION.iter().find(|c| c.as_bytes() == want).ok_or(Errno::ENOENT)?;
            self.congestion = found;
            return Ok(());
        }
        let v = int(val)?;
        match name {
            TCP_NODELAY => self.nodelay = v != 0,
            TCP_CORK => self.cork = v != 0,
            TCP_KEEPIDLE | TCP_KEEPINTVL => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                if name == TCP_KEEPIDLE {
                    self.keepidle = v;
                } else {
                    self.keepintvl = v;
                }
            }
            TCP_KEEPCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.keepcnt = v;
            }
            TCP_MAXSEG => {
                if v != 0 && !(88..=65535 - 40).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.user_mss = v as u32;
            }
            TCP_USER_TIMEOUT => {
                if v < 0 {
                    return Err(Errno::EINVAL);
                }
                self.user_timeout = v;
            }
            TCP_QUICKACK => self.quickack = v != 0,
            TCP_DEFER_ACCEPT => self.defer_accept = v.max(0),
            TCP_SYNCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.syncnt = v;
            }
            TCP_LINGER2 => self.linger2 = if v < 0 { -1 } else { v.min(120) },
            TCP_WINDOW_CLAMP => {
                if v != 0 && v < 2304 / 2 {
                    self.window_clamp = 2304 / 2;
                } else {
                    self.window_clamp = v;
                }
            }
            TCP_NOTSENT_LOWAT => self.notsent_lowat = v,
            TCP_FASTOPEN => {
                if v < 0 {
                    return Err(Errno::EINVAL);
                }
                self.fastopen = v;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// TCP option `name`; `mss` is the connection's (or the default).
    pub fn get(&self, name: i32, mss: u32) -> Result<Vec<u8>, Errno> {
        Ok(match name {
            TCP_NODELAY => out(i32::from(self.nodelay)),
            TCP_CORK => out(i32::from(self.cork)),
            TCP_KEEPIDLE => out(self.keepidle),
            TCP_KEEPINTVL => out(self.keepintvl),
            TCP_KEEPCNT => out(self.keepcnt),
            TCP_MAXSEG => {
                let m = if self.user_mss != 0 { self.user_mss.min(mss) } else { mss };
                out(m as i32)
            }
            TCP_USER_TIMEOUT => out(self.user_timeout),
            TCP_QUICKACK => out(i32::from(self.quickack)),
            TCP_DEFER_ACCEPT => out(self.defer_accept),
            TCP_SYNCNT => out(self.syncnt),
            TCP_LINGER2 => out(self.linger2),
            TCP_WINDOW_CLAMP => out(self.window_clamp),
            TCP_NOTSENT_LOWAT => out(self.notsent_lowat),
            TCP_FASTOPEN => out(self.fastopen),
            TCP_CONGESTION => {
                let mut b = self.congestion.as_bytes().to_vec();
                b.resize(CA_NAME_MAX, 0);
                b
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}

/// Linux's TCP states as tcp_info and /proc/net/tcp number them.
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_SENT: u8 = 2;
pub const TCP_FIN_WAIT2: u8 = 5;
pub const TCP_TIME_WAIT: u8 = 6;
pub const TCP_CLOSE: u8 = 7;
pub const TCP_CLOSE_WAIT: u8 = 8;
pub const TCP_LISTEN: u8 = 10;

/// `struct tcp_info` as Linux 4.4 lays it out (144 bytes: up to
/// tcpi_segs_in), with the values a loopback connection plausibly has.
pub fn tcp_info(state: u8, mss: u32, unacked: u32, bytes_sent: u64, bytes_recv: u64) -> Vec<u8> {
    let mut b = vec![0u8; 144];
    let put32 = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    b[0] = state;
    let connected = !matches!(state, TCP_LISTEN | TCP_CLOSE | TCP_SYN_SENT);
    if connected {
        // Timestamps, SACK and window scaling, both scales 7.
        b[5] = 1 | 2 | 4;
        b[6] = 0x77;
    }
    put32(&mut b, 8, 203_000); // rto (us)
    put32(&mut b, 12, if connected { 40_000 } else { 0 }); // ato
    put32(&mut b, 16, mss); // snd_mss
    put32(&mut b, 20, if connected { mss } else { MSS_DEFAULT }); // rcv_mss
    put32(&mut b, 24, unacked);
    if connected {
        put32(&mut b, 60, LO_MTU); // pmtu
        put32(&mut b, 64, 65_483); // rcv_ssthresh
        put32(&mut b, 68, 20); // rtt (us)
        put32(&mut b, 72, 10); // rttvar
    }
    put32(&mut b, 76, 0x7fff_ffff); // snd_ssthresh: infinite
    put32(&mut b, 80, 10); // snd_cwnd
    put32(&mut b, 84, mss + 12); // advmss
    put32(&mut b, 88, 3); // reordering
    put32(&mut b, 96, if connected { 65_483 } else { 0 }); // rcv_space
    let rate: u64 = if connected { u64::MAX } else { 0 };
    b[104..112].copy_from_slice(&rate.to_ne_bytes()); // pacing_rate
    b[112..120].copy_from_slice(&u64::MAX.to_ne_bytes()); // max_pacing_rate
    b[120..128].copy_from_slice(&bytes_sent.to_ne_bytes()); // bytes_acked
    b[128..136].copy_from_slice(&bytes_recv.to_ne_bytes()); // bytes_received
    b
}

/// The options a TCP or UDP socket's locked state holds for the levels
/// both serve: SOL_SOCKET, SOL_IP and SOL_IPV6.
pub struct SharedLevels<'a> {
    pub family: i32,
    pub sock_type: i32,
    pub flags: &'a super::ports::BindFlags,
    pub opts: &'a mut crate::opts::SockOpts,
    pub ip: &'a mut IpOpts,
    pub local: &'a mut super::addr::Local,
    pub port: u16,
}

impl SharedLevels<'_> {
    /// setsockopt at a shared level; None for a level the protocol serves
    /// itself (SOL_TCP, SOL_UDP).
    pub fn set(self, level: i32, name: i32, val: &[u8]) -> Option<Result<(), Errno>> {
        use std::sync::atomic::Ordering;
        Some(match level {
            SOL_SOCKET => match self.opts.set(name, val) {
                Ok(true) => {
                    self.flags.reuseaddr.store(self.opts.reuseaddr, Ordering::Relaxed);
                    self.flags.reuseport.store(self.opts.reuseport, Ordering::Relaxed);
                    Ok(())
                }
                Ok(false) => Err(Errno::ENOPROTOOPT),
                Err(e) => Err(e),
            },
            SOL_IP => self.ip.set_ip(self.sock_type, name, val),
            SOL_IPV6 if self.family == AF_INET6 => self.ip.set_ipv6(self.port != 0, name, val).map(|()| {
                if name == IPV6_V6ONLY {
                    if let super::addr::Local::Any6 { .. } = self.local {
                        *self.local = super::addr::Local::Any6 { v6only: self.ip.v6only };
                    }
                }
            }),
            _ => return None,
        })
    }
}
