//! ioctls every socket answers about the sandbox's interfaces
//! (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFINDEX, SIOCGIFNAME,
//! SIOCGIFMTU, ...), which exchange `struct ifreq`/`ifconf` with pointers
//! inside and so are served here rather than by FileOps::ioctl.
//!
//! As on Linux, the device ioctls (flags, MTU, index, hardware address,
//! queue length, name, SIOCGIFCONF) work on a socket of any family, while
//! the IPv4 address ioctls are AF_INET's and give ENOTTY elsewhere. A
//! getter copies the whole `struct ifreq` in and back out, changing only
//! the field it answers. Every setter is EPERM: the guest cannot change
//! the sandbox's interfaces.

use abi::socket::{AF_INET, AF_INET6};
use abi::Errno;
use netstack::iface::{Addr4, Interface, Interfaces};
use netstack::SocketFile;
use sentry::table::UserAddr;
use sentry::{SysResult, Task};
use std::net::Ipv4Addr;

const SIOCADDRT: u64 = 0x890b;
const SIOCDELRT: u64 = 0x890c;
const SIOCGIFNAME: u64 = 0x8910;
const SIOCGIFCONF: u64 = 0x8912;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCSIFFLAGS: u64 = 0x8914;
const SIOCGIFADDR: u64 = 0x8915;
const SIOCSIFADDR: u64 = 0x8916;
const SIOCGIFDSTADDR: u64 = 0x8917;
const SIOCSIFDSTADDR: u64 = 0x8918;
const SIOCGIFBRDADDR: u64 = 0x8919;
const SIOCSIFBRDADDR: u64 = 0x891a;
const SIOCGIFNETMASK: u64 = 0x891b;
const SIOCSIFNETMASK: u64 = 0x891c;
const SIOCGIFMETRIC: u64 = 0x891d;
const SIOCSIFMETRIC: u64 = 0x891e;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCSIFMTU: u64 = 0x8922;
const SIOCSIFNAME: u64 = 0x8923;
const SIOCSIFHWADDR: u64 = 0x8924;
const SIOCGIFHWADDR: u64 = 0x8927;
const SIOCGIFSLAVE: u64 = 0x8929;
const SIOCSIFSLAVE: u64 = 0x8930;
const SIOCADDMULTI: u64 = 0x8931;
const SIOCDELMULTI: u64 = 0x8932;
const SIOCGIFINDEX: u64 = 0x8933;
const SIOCSIFPFLAGS: u64 = 0x8934;
const SIOCGIFPFLAGS: u64 = 0x8935;
const SIOCDIFADDR: u64 = 0x8936;
const SIOCSIFHWBROADCAST: u64 = 0x8937;
const SIOCGIFTXQLEN: u64 = 0x8942;
const SIOCSIFTXQLEN: u64 = 0x8943;
const SIOCGIFMAP: u64 = 0x8970;
const SIOCSIFMAP: u64 = 0x8971;

/// `sizeof(struct ifreq)`: a 16-byte name and a 24-byte union.
const IFREQ_LEN: usize = 40;
const IFNAMSIZ: usize = 16;
/// Where the union starts (ifr_addr, ifr_flags, ifr_ifindex, ...).
const U: usize = IFNAMSIZ;

type Ifreq = [u8; IFREQ_LEN];

/// The answer to interface ioctl `req`, or None when `req` is not one
/// (the socket's own FileOps::ioctl is asked next).
pub fn interface_ioctl(task: &Task, sock: &SocketFile, req: u64, arg: UserAddr) -> Option<SysResult> {
    let family = sock.sock.family();
    let inet = family == AF_INET;
    Some(match req {
        SIOCGIFCONF => ifconf(task, arg),
        SIOCGIFNAME => ifname(task, arg),
        SIOCGIFFLAGS | SIOCGIFMETRIC | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFSLAVE | SIOCGIFMAP | SIOCGIFINDEX
        | SIOCGIFTXQLEN => device_get(task, req, arg),
        SIOCGIFADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK | SIOCGIFDSTADDR if inet => inet_get(task, req, arg),
        // devinet_ioctl knows no private flags.
        SIOCGIFPFLAGS | SIOCSIFPFLAGS if inet => read_ifreq(task, arg).and(Err(Errno::EINVAL)),
        SIOCSIFFLAGS | SIOCSIFMETRIC | SIOCSIFMTU | SIOCSIFNAME | SIOCSIFHWADDR | SIOCSIFSLAVE | SIOCADDMULTI
        | SIOCDELMULTI | SIOCSIFHWBROADCAST | SIOCSIFTXQLEN | SIOCSIFMAP => {
            read_ifreq(task, arg).and(Err(Errno::EPERM))
        }
        SIOCSIFADDR | SIOCSIFBRDADDR | SIOCSIFNETMASK | SIOCSIFDSTADDR if inet => {
            read_ifreq(task, arg).and(Err(Errno::EPERM))
        }
        // Route changes and IPv6 address changes check the capability first.
        SIOCADDRT | SIOCDELRT if inet || family == AF_INET6 => Err(Errno::EPERM),
        SIOCSIFADDR | SIOCDIFADDR | SIOCSIFDSTADDR if family == AF_INET6 => Err(Errno::EPERM),
        SIOCGIFADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK | SIOCGIFDSTADDR | SIOCGIFPFLAGS | SIOCSIFPFLAGS
        | SIOCSIFADDR | SIOCSIFBRDADDR | SIOCSIFNETMASK | SIOCSIFDSTADDR | SIOCDIFADDR | SIOCADDRT | SIOCDELRT => {
            Err(Errno::ENOTTY)
        }
        _ => return None,
    })
}

fn read_ifreq(task: &Task, arg: UserAddr) -> Result<Ifreq, Errno> {
    let mut ifr = [0u8; IFREQ_LEN];
    task.copy_in(arg, &mut ifr)?;
    Ok(ifr)
}

/// Copy the ifreq at `arg` in, answer it with `f`, copy it back out.
fn with_ifreq(task: &Task, arg: UserAddr, f: impl FnOnce(&Interfaces, &mut Ifreq) -> Result<(), Errno>) -> SysResult {
    let mut ifr = read_ifreq(task, arg)?;
    f(&task.kernel.net.ifaces, &mut ifr)?;
    task.copy_out(arg, &ifr)?;
    Ok(0)
}

fn device_get(task: &Task, req: u64, arg: UserAddr) -> SysResult {
    with_ifreq(task, arg, |ifaces, ifr| answer_device(ifaces, req, ifr))
}

fn inet_get(task: &Task, req: u64, arg: UserAddr) -> SysResult {
    with_ifreq(task, arg, |ifaces, ifr| answer_inet(ifaces, req, ifr))
}

fn ifname(task: &Task, arg: UserAddr) -> SysResult {
    with_ifreq(task, arg, answer_name)
}

/// The name in an ifreq, cut at its NUL (byte 15 is made one, as Linux).
fn name_of(ifr: &mut Ifreq) -> Vec<u8> {
    ifr[IFNAMSIZ - 1] = 0;
    let end = ifr.iter().position(|&c| c == 0).unwrap_or(IFNAMSIZ - 1);
    ifr[..end].to_vec()
}

/// The device a name designates: "eth0:1" is an alias of eth0.
fn device(ifaces: &Interfaces, name: &[u8]) -> Result<Interface, Errno> {
    let dev = name.split(|&c| c == b':').next().unwrap_or(name);
    ifaces.by_name(dev).ok_or(Errno::ENODEV)
}

fn put(ifr: &mut Ifreq, at: usize, b: &[u8]) {
    ifr[at..at + b.len()].copy_from_slice(b);
}

/// dev_ifsioc_locked's getters.
fn answer_device(ifaces: &Interfaces, req: u64, ifr: &mut Ifreq) -> Result<(), Errno> {
    let name = name_of(ifr);
    let i = device(ifaces, &name)?;
    match req {
        // ifr_flags is a short: IFF_LOWER_UP and above do not fit.
        SIOCGIFFLAGS => put(ifr, U, &(i.flags as u16).to_ne_bytes()),
        SIOCGIFMETRIC => put(ifr, U, &0i32.to_ne_bytes()),
        SIOCGIFMTU => put(ifr, U, &i.mtu.to_ne_bytes()),
        SIOCGIFHWADDR => {
            put(ifr, U, &i.hw_type.to_ne_bytes());
            put(ifr, U + 2, &i.mac);
        }
        SIOCGIFSLAVE => return Err(Errno::EINVAL),
        // struct ifmap: mem_start, mem_end, base_addr, irq, dma, port.
        SIOCGIFMAP => put(ifr, U, &[0; 21]),
        SIOCGIFINDEX => put(ifr, U, &i.index.to_ne_bytes()),
        SIOCGIFTXQLEN => put(ifr, U, &i.txqlen.to_ne_bytes()),
        _ => return Err(Errno::ENOTTY),
    }
    Ok(())
}

/// devinet_ioctl's getters: the address whose label is the name (and,
/// 4.4BSD style, whose address is the one passed in, when one is).
fn answer_inet(ifaces: &Interfaces, req: u64, ifr: &mut Ifreq) -> Result<(), Errno> {
    let label = name_of(ifr);
    let try_match = u16::from_ne_bytes([ifr[U], ifr[U + 1]]) == AF_INET as u16;
    let given = [ifr[U + 4], ifr[U + 5], ifr[U + 6], ifr[U + 7]];
    let i = device(ifaces, &label)?;
    let by_label = |a: &&Addr4| a.label.as_bytes() == label.as_slice();
    let a =
        i.v4.iter()
            .filter(by_label)
            .find(|a| try_match && a.addr.octets() == given)
            .or_else(|| i.v4.iter().find(by_label))
            .ok_or(Errno::EADDRNOTAVAIL)?;
    let v = match req {
        SIOCGIFADDR | SIOCGIFDSTADDR => a.addr,
        SIOCGIFBRDADDR => a.broadcast.unwrap_or(Ipv4Addr::UNSPECIFIED),
        _ => a.netmask(),
    };
    ifr[U..U + 16].fill(0);
    put(ifr, U, &(AF_INET as u16).to_ne_bytes());
    put(ifr, U + 4, &v.octets());
    Ok(())
}

/// SIOCGIFNAME: the name of the interface whose index is ifr_ifindex.
fn answer_name(ifaces: &Interfaces, ifr: &mut Ifreq) -> Result<(), Errno> {
    let index = i32::from_ne_bytes([ifr[U], ifr[U + 1], ifr[U + 2], ifr[U + 3]]);
    let i = ifaces.by_index(index).ok_or(Errno::ENODEV)?;
    let name = i.name.as_bytes();
    let n = name.len().min(IFNAMSIZ - 1);
    put(ifr, 0, &name[..n]);
    ifr[n] = 0;
    Ok(())
}

/// SIOCGIFCONF's entries: one ifreq (label, AF_INET address) per IPv4
/// address.
fn ifconf_entries(ifaces: &Interfaces) -> Vec<Ifreq> {
    let mut v = Vec::new();
    for i in ifaces.list() {
        for a in &i.v4 {
            let mut ifr = [0u8; IFREQ_LEN];
            let label = a.label.as_bytes();
            put(&mut ifr, 0, &label[..label.len().min(IFNAMSIZ - 1)]);
            put(&mut ifr, U, &(AF_INET as u16).to_ne_bytes());
            put(&mut ifr, U + 4, &a.addr.octets());
            v.push(ifr);
        }
    }
    v
}

/// SIOCGIFCONF: as many entries as fit in ifc_len; with a NULL ifc_buf,
/// the length all would take.
fn ifconf(task: &Task, arg: UserAddr) -> SysResult {
    let mut ifc = [0u8; 16];
    task.copy_in(arg, &mut ifc)?;
    let len = i32::from_ne_bytes([ifc[0], ifc[1], ifc[2], ifc[3]]);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&ifc[8..16]);
    let buf = UserAddr(u64::from_ne_bytes(bytes));
    let entries = ifconf_entries(&task.kernel.net.ifaces);
    let mut total: i32 = 0;
    for ifr in entries {
        if !buf.is_null() {
            if len.saturating_sub(total) < IFREQ_LEN as i32 {
                break;
            }
            task.copy_out(buf.offset(total as u64)?, &ifr)?;
        }
        total += IFREQ_LEN as i32;
    }
    task.write_obj(arg, &total)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ifreq for `name` with the union filled with 0x55, as a program
    /// that leaves it uninitialised might.
    fn ifreq(name: &str) -> Ifreq {
        let mut r = [0x55u8; IFREQ_LEN];
        r[..IFNAMSIZ].fill(0);
        r[..name.len()].copy_from_slice(name.as_bytes());
        r
    }

    fn union_hex(r: &Ifreq) -> String {
        r[U..].iter().map(|b| format!("{b:02x}")).collect()
    }

    // The expected unions are what Linux writes (6.x, x86-64).
    #[test]
    fn device_getters_touch_only_their_field() {
        let t = Interfaces::loopback_only();
        let cases = [
            (SIOCGIFFLAGS, "490055555555555555555555555555555555555555555555"),
            (SIOCGIFMTU, "000001005555555555555555555555555555555555555555"),
            (SIOCGIFINDEX, "010000005555555555555555555555555555555555555555"),
            (SIOCGIFHWADDR, "040300000000000055555555555555555555555555555555"),
            (SIOCGIFTXQLEN, "e80300005555555555555555555555555555555555555555"),
            (SIOCGIFMETRIC, "000000005555555555555555555555555555555555555555"),
            (SIOCGIFMAP, "000000000000000000000000000000000000000000555555"),
        ];
        for (req, want) in cases {
            let mut r = ifreq("lo");
            answer_device(&t, req, &mut r).unwrap();
            assert_eq!(union_hex(&r), want, "request {req:#x}");
        }
        let mut r = ifreq("lo:7");
        answer_device(&t, SIOCGIFFLAGS, &mut r).unwrap();
        assert_eq!(&r[..5], b"lo:7\0");
        assert_eq!(answer_device(&t, SIOCGIFSLAVE, &mut ifreq("lo")), Err(Errno::EINVAL));
        assert_eq!(answer_device(&t, SIOCGIFMTU, &mut ifreq("eth0")), Err(Errno::ENODEV));
        assert_eq!(answer_device(&t, SIOCGIFMTU, &mut [b'l'; IFREQ_LEN]), Err(Errno::ENODEV));
    }

    #[test]
    fn inet_getters() {
        let t = Interfaces::loopback_only();
        let cases = [
            (SIOCGIFADDR, "020000007f00000100000000000000005555555555555555"),
            (SIOCGIFBRDADDR, "020000000000000000000000000000005555555555555555"),
            (SIOCGIFNETMASK, "02000000ff00000000000000000000005555555555555555"),
            (SIOCGIFDSTADDR, "020000007f00000100000000000000005555555555555555"),
        ];
        for (req, want) in cases {
            let mut r = ifreq("lo");
            answer_inet(&t, req, &mut r).unwrap();
            assert_eq!(union_hex(&r), want, "request {req:#x}");
        }
        // An alias label lo does not have; an unknown device.
        assert_eq!(answer_inet(&t, SIOCGIFADDR, &mut ifreq("lo:7")), Err(Errno::EADDRNOTAVAIL));
        assert_eq!(answer_inet(&t, SIOCGIFADDR, &mut ifreq("nosuch0")), Err(Errno::ENODEV));
        // 4.4BSD style: an AF_INET address that matches none falls back to the label.
        let mut r = ifreq("lo");
        r[U..U + 8].copy_from_slice(&[2, 0, 0, 0, 10, 0, 0, 1]);
        answer_inet(&t, SIOCGIFADDR, &mut r).unwrap();
        assert_eq!(&r[U + 4..U + 8], &[127, 0, 0, 1]);
    }

    #[test]
    fn names_and_ifconf() {
        let t = Interfaces::loopback_only();
        let mut r = ifreq("");
        r[U..U + 4].copy_from_slice(&1i32.to_ne_bytes());
        answer_name(&t, &mut r).unwrap();
        assert_eq!(&r[..3], b"lo\0");
        assert_eq!(union_hex(&r), "010000005555555555555555555555555555555555555555");
        r[U..U + 4].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(answer_name(&t, &mut r), Err(Errno::ENODEV));
        let e = ifconf_entries(&t);
        assert_eq!(e.len(), 1);
        assert_eq!(&e[0][..3], b"lo\0");
        assert_eq!(&e[0][U..U + 8], &[2, 0, 0, 0, 127, 0, 0, 1]);
        assert!(e[0][U + 8..].iter().all(|&b| b == 0));
    }
}
