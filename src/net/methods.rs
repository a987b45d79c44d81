//! The methods every socket over a [`NetFd`](super::netfd::NetFd) shares, written once:
//! [`netfd_methods!`] generates the timeout, deadline, address and `close` methods of
//! [`TcpStream`](super::TcpStream), [`UnixStream`](super::UnixStream),
//! [`UdpSocket`](super::UdpSocket) and [`UnixDatagram`](super::UnixDatagram), and
//! [`read_write!`] their `Read`/`Write` implementations (and the split halves').
//!
//! They are inherent methods, as `std` and Go have them (`c.set_read_deadline(..)` needs no
//! trait in scope); a macro rather than a trait keeps them so. Each method's documentation is
//! written here once, with the type's words (`stream`/`socket`, `read`/`receive`) filled in;
//! `close` and `set_read_deadline`, whose documentation and examples differ by type, take
//! theirs from the invocation.

/// Implements, for a type whose field `fd` is a `NetFd`, the methods every socket shares:
/// `local_addr`, `peer_addr`, `close`, `set_read_timeout`, `set_write_timeout`,
/// `read_timeout`, `write_timeout`, `set_read_deadline`, `set_write_deadline`, `set_deadline`,
/// and `AsRawFd`.
///
/// ```text
/// netfd_methods! {
///     TcpStream: "stream", "read" / "write", std::net::SocketAddr;
///     /// (the documentation of `close`)
///     fn close;
///     /// (the documentation of `set_read_deadline`)
///     fn set_read_deadline;
/// }
/// ```
macro_rules! netfd_methods {
    (
        $T:ident: $what:literal, $rd:literal / $wr:literal, $Addr:ty;
        $(#[$close:meta])* fn close;
        $(#[$rdl:meta])* fn set_read_deadline;
    ) => {
        impl $T {
            #[doc = concat!("The address of this end of the ", $what, ".")]
            ///
            /// # Errors
            /// As `getsockname(2)`.
            pub fn local_addr(&self) -> ::std::io::Result<$Addr> {
                self.fd.io().inner().local_addr()
            }

            #[doc = concat!("The address of the ", $what, "'s peer.")]
            ///
            /// # Errors
            #[doc = concat!(
                "As `getpeername(2)`: `NotConnected` when the ", $what, " has no peer ",
                "(not connected, or the peer is gone)."
            )]
            pub fn peer_addr(&self) -> ::std::io::Result<$Addr> {
                self.fd.io().inner().peer_addr()
            }

            $(#[$close])*
            pub fn close(&self) -> ::std::io::Result<()> {
                self.fd.close()
            }

            #[doc = concat!(
                "Sets the timeout of each ", $rd, ": a ", $rd, " that waits `d` fails with ",
                "`TimedOut`. `None` (the default) waits as long as it takes. A ", $rd,
                " blocked meanwhile measures its wait, from its start, against the new timeout."
            )]
            ///
            /// # Errors
            /// `InvalidInput` for a zero duration (as `std`).
            pub fn set_read_timeout(
                &self,
                d: ::std::option::Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                $crate::net::deadline::check_timeout(d)?;
                self.fd.set_timeout($crate::net::ready::Dir::Read, d);
                Ok(())
            }

            #[doc = concat!("Sets the timeout of each ", $wr, " (`None`, the default: no limit).")]
            ///
            /// # Errors
            /// `InvalidInput` for a zero duration (as `std`).
            pub fn set_write_timeout(
                &self,
                d: ::std::option::Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                $crate::net::deadline::check_timeout(d)?;
                self.fd.set_timeout($crate::net::ready::Dir::Write, d);
                Ok(())
            }

            #[doc = concat!("The per-", $rd, " timeout.")]
            pub fn read_timeout(&self) -> ::std::option::Option<::std::time::Duration> {
                self.fd.limit($crate::net::ready::Dir::Read).timeout()
            }

            #[doc = concat!("The per-", $wr, " timeout.")]
            pub fn write_timeout(&self) -> ::std::option::Option<::std::time::Duration> {
                self.fd.limit($crate::net::ready::Dir::Write).timeout()
            }

            $(#[$rdl])*
            pub fn set_read_deadline(&self, t: ::std::option::Option<::std::time::Instant>) {
                self.fd.set_deadline($crate::net::ready::Dir::Read, t);
            }

            #[doc = concat!(
                "Sets an absolute deadline for ", $wr, "s (Go's `SetWriteDeadline`; `None` ",
                "clears it), as [`set_read_deadline`](Self::set_read_deadline) does for ",
                $rd, "s."
            )]
            pub fn set_write_deadline(&self, t: ::std::option::Option<::std::time::Instant>) {
                self.fd.set_deadline($crate::net::ready::Dir::Write, t);
            }

            /// Sets both deadlines (Go's `SetDeadline`).
            pub fn set_deadline(&self, t: ::std::option::Option<::std::time::Instant>) {
                self.set_read_deadline(t);
                self.set_write_deadline(t);
            }
        }

        impl ::std::os::fd::AsRawFd for $T {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.fd.io())
            }
        }
    };
}

/// Implements `Read` (with `read!`) or `Write` (with `write!`) for `$T` and `&$T`, through
/// the `NetFd` at `self.$path` (`fd` for a stream, `s.fd` for a split half).
macro_rules! read_write {
    (read $T:ty => $($path:ident).+) => {
        impl ::std::io::Read for $T {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.$($path).+.read(buf)
            }
        }

        impl ::std::io::Read for &$T {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.$($path).+.read(buf)
            }
        }
    };
    (write $T:ty => $($path:ident).+) => {
        impl ::std::io::Write for $T {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.$($path).+.write(buf)
            }

            #[inline]
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.$($path).+.write_vectored(bufs)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Write for &$T {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.$($path).+.write(buf)
            }

            #[inline]
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.$($path).+.write_vectored(bufs)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use {netfd_methods, read_write};
