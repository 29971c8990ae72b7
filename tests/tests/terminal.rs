//! Terminals of containers (`process.terminal`, `do -t`): the guest's
//! pty is the Sentry's; runsc-lite bridges it to a host terminal, either
//! its own (raw mode, restored afterwards) or one whose master it sends to
//! a `--console-socket` (runc's protocol). Each test plays the user's side
//! with a host pty of its own.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tests::bundle::{config, Bundle};
use tests::{need_busybox, runsc_lite, timeout, TempDir, PLATFORMS};

fn host_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc calls on descriptors this function owns; the
    // name buffer is NUL-terminated by ptsname_r.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(s >= 0, "open the slave");
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize.
    assert_eq!(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }, 0);
}

fn lflag(fd: RawFd) -> libc::tcflag_t {
    // SAFETY: tcgetattr writes a termios.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(fd, &mut t) }, 0);
    t.c_lflag
}

/// Read `m` until EOF/EIO, `deadline`, or `stop` says so with nothing
/// left to read; `step` sees the text so far and may answer (returns
/// bytes to write).
fn converse(
    m: RawFd,
    deadline: Instant,
    mut step: impl FnMut(&str) -> Option<Vec<u8>>,
    mut stop: impl FnMut() -> bool,
) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut p = libc::pollfd { fd: m, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 200) } <= 0 {
            if stop() {
                break;
            }
            continue;
        }
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe { libc::read(m, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
        if let Some(reply) = step(&String::from_utf8_lossy(&out)) {
            // SAFETY: the pointer and length describe `reply`.
            unsafe { libc::write(m, reply.as_ptr().cast(), reply.len()) };
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn wait_child(c: &mut Child, deadline: Instant) -> Option<i32> {
    while Instant::now() < deadline {
        if let Ok(Some(st)) = c.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

/// `do -t` on a terminal: the guest sees a pty of the sandbox, the window
/// size of runsc-lite's terminal, typed input with echo; its exit status
/// comes back and the terminal's settings are put back.
#[test]
fn do_tty_bridges_the_callers_terminal() {
    for p in PLATFORMS {
        let (m, s) = host_pty();
        set_winsize(m.as_raw_fd(), 33, 111);
        let before = lflag(s.as_raw_fd());
        let (mut c, _state) = runsc_lite(p);
        c.args(["do", "-t", "sh", "-c", "tty; stty size; read x; echo got $x; exit 7"])
            .stdin(Stdio::from(s.try_clone().expect("dup")))
            .stdout(Stdio::from(s.try_clone().expect("dup")))
            .stderr(Stdio::from(s.try_clone().expect("dup")));
        let mut child = c.spawn().expect("spawn runsc-lite");
        let deadline = Instant::now() + timeout();
        let mut sent = false;
        let mut ended = None;
        // The test holds the slave too: no EOF comes, so reading stops
        // once runsc-lite has ended and nothing is left.
        let all = converse(
            m.as_raw_fd(),
            deadline,
            |text| {
                if !sent && text.contains("33 111") {
                    sent = true;
                    return Some(b"hello\r".to_vec());
                }
                None
            },
            || {
                if let Ok(Some(st)) = child.try_wait() {
                    ended = Some(st.code());
                }
                ended.is_some()
            },
        );
        let status = match ended {
            Some(code) => code,
            None => wait_child(&mut child, deadline),
        };
        assert_eq!(status, Some(7), "{p}: exit status; output {all:?}");
        assert!(all.contains("/dev/pts/0\r\n"), "{p}: {all:?}");
        assert!(all.contains("33 111\r\n"), "{p}: {all:?}");
        assert!(all.contains("hello\r\ngot hello\r\n"), "{p}: {all:?}");
        assert_eq!(lflag(s.as_raw_fd()), before, "{p}: the terminal's settings were not restored");
    }
}

fn recv_fd(sock: RawFd) -> (String, OwnedFd) {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut control = [0u8; 64];
    // SAFETY: an all-zero msghdr is valid; the fields point at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    // SAFETY: `msg` describes live buffers.
    let n = unsafe { libc::recvmsg(sock, &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled the control buffer; CMSG_FIRSTHDR checks its length.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no control message");
        assert_eq!(((*c).cmsg_level, (*c).cmsg_type), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
        let mut fd: RawFd = -1;
        std::ptr::copy_nonoverlapping(libc::CMSG_DATA(c), &mut fd as *mut RawFd as *mut u8, 4);
        OwnedFd::from_raw_fd(fd)
    };
    (String::from_utf8_lossy(&data[..n as usize]).into_owned(), fd)
}

/// A bundle with `process.terminal: true` and `--console-socket`: the
/// test receives the master (runc's protocol), types a command line,
/// reads the echo and the output, and gets the shell's exit status.
#[test]
fn bundle_terminal_through_a_console_socket() {
    let Some(bb) = need_busybox("bundle_terminal_through_a_console_socket") else { return };
    let b = Bundle::new(&bb);
    b.write_raw_config(&config(&["/bin/sh"]).to_json().replace("\"terminal\": false", "\"terminal\": true"));
    for p in PLATFORMS {
        let dir = TempDir::new("console");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind the console socket");
        let (mut c, _state) = runsc_lite(p);
        c.arg("run")
            .arg("--console-socket")
            .arg(&path)
            .arg("--bundle")
            .arg(b.path())
            .arg(tests::unique("tty"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn runsc-lite");
        let deadline = Instant::now() + timeout();
        let (conn, _) = listener.accept().expect("accept");
        let (name, master) = recv_fd(conn.as_raw_fd());
        assert_eq!(name, "/dev/ptmx");
        let mut f = std::fs::File::from(master.try_clone().expect("dup"));
        f.write_all(b"echo hi; exit 3\n").expect("type");
        let out = converse(master.as_raw_fd(), deadline, |_| None, || false);
        let status = wait_child(&mut child, deadline);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert_eq!(status, Some(3), "{p}: exit status; output {out:?}; stderr {err}");
        assert!(out.contains("echo hi; exit 3\r\n"), "{p}: no echo: {out:?}");
        assert!(out.contains("hi\r\n"), "{p}: {out:?}");
    }
}

/// `exec --tty --console-socket S ID sh` in a running container (as
/// containerd's `ctr task exec -t`): the exec'd shell gets a Sentry pty
/// as its controlling terminal, bridged to the host master sent to S;
/// typed input is echoed and its exit status comes back.
#[test]
fn exec_tty_through_a_console_socket() {
    let Some(bb) = need_busybox("exec_tty_through_a_console_socket") else { return };
    let lc = tests::bundle::Lifecycle::new(&bb, "systrap");
    lc.bundle.write_config(&config(&["sh", "-c", "echo up; while :; do sleep 1; done"]));
    let (st, err) = lc.create("et", &[]);
    assert_eq!(st, 0, "create: {err}");
    let o = lc.cmd(&["start", "et"]);
    assert_eq!(o.status, 0, "start: {}", o.stderr);
    lc.wait_output("et", "up", |o| o.contains("up"));
    let dir = TempDir::new("console");
    let path = dir.path().join("exec.sock");
    let listener = UnixListener::bind(&path).expect("bind the console socket");
    let sock = path.to_string_lossy().into_owned();
    let mut c = lc.command(&["exec", "--tty", "--console-socket", &sock, "et", "sh"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn exec");
    let deadline = Instant::now() + timeout();
    let (conn, _) = listener.accept().expect("accept");
    let (name, master) = recv_fd(conn.as_raw_fd());
    assert_eq!(name, "/dev/ptmx");
    let mut f = std::fs::File::from(master.try_clone().expect("dup"));
    f.write_all(b"tty; echo hi; exit 4\n").expect("type");
    let out = converse(master.as_raw_fd(), deadline, |_| None, || false);
    let status = wait_child(&mut child, deadline);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(status, Some(4), "exit status; output {out:?}; stderr {err}");
    assert!(out.contains("tty; echo hi; exit 4\r\n"), "no echo: {out:?}");
    assert!(out.contains("\r\n/dev/pts/"), "not a pty: {out:?}");
    assert!(out.contains("hi\r\n"), "{out:?}");
    // The container goes on; --tty --detach without a socket is refused.
    let o = lc.cmd(&["exec", "--tty", "--detach", "et", "sh"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("console socket"), "{}", o.stderr);
    let o = lc.cmd(&["exec", "et", "echo", "still"]);
    assert_eq!((o.status, o.stdout.as_str()), (0, "still\n"), "{}", o.stderr);
    let _ = lc.cmd(&["kill", "et", "KILL"]);
}
