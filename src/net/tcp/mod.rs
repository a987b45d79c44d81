//! TCP for goroutines, over `may::net`: the listener ([`listener`]), the connection
//! ([`stream`]) and its halves ([`split`]).

mod listener;
mod split;
mod stream;

pub use listener::{Incoming, ListenConfig, TcpListener};
pub use split::{TcpReadHalf, TcpWriteHalf};
pub use stream::TcpStream;
pub(crate) use stream::connect_one;
