//! The socket programs of `tests/guest/` under `--network=host`, each
//! compared with its native run as `conformance.rs` does (which runs the
//! socket guests under `--network=none` and `--network=sandbox` itself,
//! `tests::NETWORKS`).
//!
//! Run one: `cargo test -p tests --test conformance_net host_inet_tcp -- --nocapture`.

macro_rules! conformance_net {
    ($mode:literal: $( $(#[$attr:meta])* $test:ident = $guest:ident $([$($mask:literal),*])? ),* $(,)?) => {
        $(
            $(#[$attr])*
            #[test]
            fn $test() {
                tests::check_conformance_network(stringify!($guest), $mode, &[$($($mask),*)?]);
            }
        )*
    };
}

conformance_net! { "host":
    host_inet_tcp = inet_tcp,
    host_inet_tcp6 = inet_tcp6,
    host_inet_udp = inet_udp,
    // The Sentry holds no capability in the host's network namespace:
    // setting a congestion control outside
    // net.ipv4.tcp_allowed_congestion_control is EPERM there, as for any
    // unprivileged process (the native run is root's).
    host_inet_opts = inet_opts ["foreign ", "congestion "],
    host_socket_badinput = socket_badinput,
    host_unix_stream = unix_stream,
    host_poll_wake = poll_wake,
}
