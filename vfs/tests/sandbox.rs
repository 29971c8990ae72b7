//! Path resolution over a realistic sandbox: an overlay root (read-only
//! host directory below, tmpfs above) with a tmpfs mounted at /tmp and a
//! devfs at /dev. Escapes through symlinks and ".." must stay inside.

use abi::flags::{O_RDONLY, O_RDWR, O_WRONLY, S_IFREG};
use abi::Errno;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use vfs::devfs::DevFs;
use vfs::hostfs::HostFs;
use vfs::overlay::Overlay;
use vfs::tmpfs::TmpFs;
use vfs::{Creds, DentryRef, Follow, Interrupt, IoCtx, MountFlags, MountNamespace};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = PathBuf::from("/tmp").join(format!(
            "vfs-it-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            vfs::now().1
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SANDBOX_PASSWD: &[u8] = b"sandbox:x:0:0::/:/bin/sh\n";

/// The host tree that becomes the sandbox's read-only lower layer.
fn rootfs() -> TempDir {
    let td = TempDir::new("root");
    let r = &td.0;
    for d in ["etc", "bin", "dir/sub", "tmp", "dev"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("etc/passwd"), SANDBOX_PASSWD).unwrap();
    std::fs::write(r.join("bin/sh"), b"#!fake shell\n").unwrap();
    let ln = |t: &str, at: &str| std::os::unix::fs::symlink(t, r.join(at)).unwrap();
    ln("../../../../etc/passwd", "escape_rel");
    ln("/etc/passwd", "escape_abs");
    ln("../../../../../../../etc/passwd", "dir/sub/deep_rel");
    ln("/../../..", "up");
    ln("loop2", "loop1");
    ln("loop1", "loop2");
    ln("selfloop", "selfloop");
    ln("/proc/self/root/etc/passwd", "via_proc");
    ln("/etc", "etc_link");
    td
}

struct Sandbox {
    td: TempDir,
    ns: Arc<MountNamespace>,
    root: DentryRef,
}

fn sandbox() -> Sandbox {
    let td = rootfs();
    let lower = HostFs::new_root(&td.0, true).unwrap();
    let upper = TmpFs::new_root(0o755, 0, 0);
    let ns = MountNamespace::new("overlay", "rootfs", Overlay::new(lower, upper), MountFlags::default());
    ns.mount(b"/tmp", "tmpfs", "none", TmpFs::new_root(0o1777, 0, 0), MountFlags::default());
    ns.mount(b"/dev", "tmpfs", "none", DevFs::new_root(), MountFlags::default());
    let root = ns.root();
    Sandbox { td, ns, root }
}

impl Sandbox {
    fn resolve(&self, path: &str) -> Result<DentryRef, Errno> {
        self.ns.resolve(&self.root, &self.root, path.as_bytes(), Follow::Yes, &Creds::root())
    }

    fn resolve_from(&self, cwd: &DentryRef, path: &str) -> Result<DentryRef, Errno> {
        self.ns.resolve(&self.root, cwd, path.as_bytes(), Follow::Yes, &Creds::root())
    }
}

fn ctx(irq: &Interrupt) -> IoCtx<'_> {
    IoCtx { flags: 0, interrupt: irq }
}

fn read_all(d: &DentryRef) -> Vec<u8> {
    let irq = Interrupt::default();
    let f = d.inode.open(O_RDONLY).unwrap();
    let mut out = Vec::new();
    let mut b = vec![0u8; 4096];
    loop {
        let n = f.read(&ctx(&irq), &mut b, out.len() as u64).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[..n]);
    }
    out
}

#[test]
fn symlinks_and_dotdot_stay_inside() {
    let sb = sandbox();
    let inside = std::fs::metadata(sb.td.0.join("etc/passwd")).unwrap().ino();
    for p in [
        "/etc/passwd",
        "/escape_rel",
        "/escape_abs",
        "/dir/sub/deep_rel",
        "/../../../etc/passwd",
        "/etc/../../../../etc/passwd",
        "/up/etc/passwd",
        "/etc_link/passwd",
        "/etc_link/../etc_link/passwd",
        "escape_rel",
        "../etc/passwd",
    ] {
        let d = sb.resolve(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert_eq!(d.inode.stat().unwrap().st_ino, inside, "{p}");
        assert_eq!(read_all(&d), SANDBOX_PASSWD, "{p}");
        assert_eq!(d.path(), b"/etc/passwd", "{p}");
    }
    // Relative to a working directory deep inside.
    let cwd = sb.resolve("/dir/sub").unwrap();
    for p in ["deep_rel", "../../etc/passwd", "../../../../../etc/passwd", "../../escape_abs"] {
        let d = sb.resolve_from(&cwd, p).unwrap();
        assert_eq!(d.inode.stat().unwrap().st_ino, inside, "{p}");
    }
    // ".." at the root is the root.
    let up = sb.resolve("/..").unwrap();
    assert_eq!(up.path(), b"/");
    assert!(Arc::ptr_eq(&up.inode, &sb.root.inode));
    let up = sb.resolve("/up").unwrap();
    assert_eq!(up.path(), b"/");
    // /proc is not mounted here: no way out through it either.
    assert_eq!(sb.resolve("/via_proc").err(), Some(Errno::ENOENT));
    // Loops.
    assert_eq!(sb.resolve("/loop1").err(), Some(Errno::ELOOP));
    assert_eq!(sb.resolve("/selfloop").err(), Some(Errno::ELOOP));
    assert_eq!(sb.resolve("/loop1/x").err(), Some(Errno::ELOOP));
    // Not following the last component gives the link itself.
    let l = sb.ns.resolve(&sb.root, &sb.root, b"/escape_abs", Follow::No, &Creds::root()).unwrap();
    assert_eq!(l.inode.readlink().unwrap(), b"/etc/passwd");
    assert_eq!(sb.resolve("/etc/passwd/").err(), Some(Errno::ENOTDIR));
}

#[test]
fn tmpfs_and_devfs_mounts() {
    let sb = sandbox();
    let c = Creds::new(1000, 1000, vec![]);
    let (tmp, name) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/tmp/file", &c).unwrap();
    let name = name.unwrap();
    assert_eq!(tmp.mount.fs_type, "tmpfs");
    let f = tmp.inode.create(&name, S_IFREG | 0o600, &c).unwrap();
    let irq = Interrupt::default();
    f.open(O_WRONLY).unwrap().write(&ctx(&irq), b"in tmpfs", 0).unwrap();
    let d = sb.resolve("/tmp/file").unwrap();
    assert_eq!(read_all(&d), b"in tmpfs");
    assert_eq!(d.inode.stat().unwrap().st_uid, 1000);
    assert!(!sb.td.0.join("tmp/file").exists());
    // ".." out of a mount goes back to the parent mount.
    let back = sb.resolve("/tmp/../etc/passwd").unwrap();
    assert_eq!(read_all(&back), SANDBOX_PASSWD);
    // /dev/null through the mount.
    let null = sb.resolve("/dev/null").unwrap();
    assert_eq!(null.inode.stat().unwrap().st_rdev, vfs::makedev(1, 3));
    assert_eq!(null.inode.open(O_RDWR).unwrap().write(&ctx(&irq), b"gone", 0), Ok(4));
    // /dev/stdout points at /proc/self/fd/1, which is not mounted here.
    assert_eq!(sb.resolve("/dev/stdout").err(), Some(Errno::ENOENT));
}

#[test]
fn overlay_copy_up_and_whiteouts() {
    let sb = sandbox();
    let irq = Interrupt::default();
    let host_passwd = sb.td.0.join("etc/passwd");
    // Writing through the overlay copies up; the host file is untouched.
    let d = sb.resolve("/escape_rel").unwrap();
    let f = d.inode.open(O_RDWR).unwrap();
    f.write(&ctx(&irq), b"SANDBOX", 0).unwrap();
    assert_eq!(std::fs::read(&host_passwd).unwrap(), SANDBOX_PASSWD);
    let again = sb.resolve("/etc/passwd").unwrap();
    assert!(read_all(&again).starts_with(b"SANDBOX:x"));
    // Unlinking a lower file leaves a whiteout.
    let (bin, name) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/bin/sh", &Creds::root()).unwrap();
    bin.inode.unlink(&name.unwrap()).unwrap();
    assert_eq!(sb.resolve("/bin/sh").err(), Some(Errno::ENOENT));
    assert!(bin.inode.readdir().unwrap().is_empty());
    assert!(sb.td.0.join("bin/sh").exists());
    // New files live in the upper layer only.
    let (etc, _) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/etc/hosts", &Creds::root()).unwrap();
    etc.inode.create(b"hosts", S_IFREG | 0o644, &Creds::root()).unwrap();
    assert!(sb.resolve("/etc/hosts").is_ok());
    assert!(!sb.td.0.join("etc/hosts").exists());
}

#[test]
fn readonly_hostfs_is_erofs() {
    let td = rootfs();
    let ro = HostFs::new_root(&td.0, true).unwrap();
    let ns = MountNamespace::new("bind", "rootfs", ro, MountFlags { readonly: true, ..Default::default() });
    let root = ns.root();
    let c = Creds::root();
    let (parent, name) = ns.resolve_parent(&root, &root, b"/etc/new", &c).unwrap();
    assert_eq!(parent.mount.check_writable(), Err(Errno::EROFS));
    assert_eq!(parent.inode.create(&name.unwrap(), 0o644, &c).err(), Some(Errno::EROFS));
    let pw = ns.resolve(&root, &root, b"/escape_abs", Follow::Yes, &c).unwrap();
    assert_eq!(pw.inode.open(O_WRONLY).err(), Some(Errno::EROFS));
    assert_eq!(parent.inode.unlink(b"passwd"), Err(Errno::EROFS));
    assert_eq!(std::fs::read(td.0.join("etc/passwd")).unwrap(), SANDBOX_PASSWD);
}

#[test]
fn pipe_blocking_and_interrupt() {
    let (r, w) = vfs::pipe::new_pair();
    let irq = Arc::new(Interrupt::default());
    let (r2, i2) = (r.clone(), irq.clone());
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        r2.read(&IoCtx { flags: 0, interrupt: &i2 }, &mut b, 0)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished());
    irq.interrupt();
    assert_eq!(t.join().unwrap(), Err(Errno::ERESTARTSYS));
    irq.clear();
    // The same reader, woken by data this time.
    let (r2, i2) = (r.clone(), irq.clone());
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        r2.read(&IoCtx { flags: 0, interrupt: &i2 }, &mut b, 0).map(|n| b[..n].to_vec())
    });
    std::thread::sleep(Duration::from_millis(50));
    let wi = Interrupt::default();
    w.write(&ctx(&wi), b"data", 0).unwrap();
    assert_eq!(t.join().unwrap(), Ok(b"data".to_vec()));
    // The last writer going means EOF.
    w.release();
    let mut b = [0u8; 4];
    assert_eq!(r.read(&ctx(&wi), &mut b, 0), Ok(0));
}
