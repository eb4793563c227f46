//! Room names, and what can name one or several rooms.

use std::borrow::Cow;

use ferrio_engine::Sid;

/// A room name. A socket's id names the room that socket is always in.
pub type Room = Cow<'static, str>;

/// One room, for [`IntoRooms`].
pub trait IntoRoom {
    /// The room.
    fn into_room(self) -> Room;
}

impl IntoRoom for &str {
    fn into_room(self) -> Room {
        Cow::Owned(self.to_owned())
    }
}
impl IntoRoom for String {
    fn into_room(self) -> Room {
        Cow::Owned(self)
    }
}
impl IntoRoom for &String {
    fn into_room(self) -> Room {
        Cow::Owned(self.clone())
    }
}
impl IntoRoom for Room {
    fn into_room(self) -> Room {
        self
    }
}
impl IntoRoom for Sid {
    fn into_room(self) -> Room {
        Cow::Owned(self.as_str().to_owned())
    }
}

/// One or more rooms: a `&str`, a `String`, a socket id, or a `Vec` or array of them.
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl<T: IntoRoom> IntoRooms for T {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.into_room()]
    }
}
impl<T: IntoRoom> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(IntoRoom::into_room).collect()
    }
}
impl<T: IntoRoom, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(IntoRoom::into_room).collect()
    }
}
