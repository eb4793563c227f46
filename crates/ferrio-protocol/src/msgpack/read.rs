//! A msgpack reader with notepack.io's reading of its extensions.
//!
//! rmpv's own reader cannot be used as is: it cannot tell notepack's `undefined` (fixext 1 of
//! type 0) from an `ArrayBuffer` of one byte (ext 8 of type 0), both `Ext(0, [_])` to it, and it
//! reads the reserved marker `0xc1` as nil.

use rmpv::Value;

/// The most elements reserved ahead for a container, whatever length it claims.
const PREALLOCATE: usize = 16;

use crate::socketio::{DecodeError, MAX_DEPTH};

/// The four fields of a packet map, `None` when absent (or `undefined`).
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) kind: Option<Value>,
    pub(super) nsp: Option<Value>,
    pub(super) data: Option<Value>,
    pub(super) id: Option<Value>,
}

/// Reads the one msgpack map of a packet; a well-formed value that is no map is
/// [`DecodeError::BadPacketMap`].
pub(super) fn packet_fields(input: &[u8]) -> Result<Fields, DecodeError> {
    if input.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = Reader { input, pos: 0 };
    let Some(len) = reader.map_len()? else {
        reader.value(0)?;
        reader.end()?;
        return Err(DecodeError::BadPacketMap);
    };
    let mut fields = Fields::default();
    let mut duplicate = false;
    for _ in 0..len {
        let key = reader.value(1)?;
        let value = if reader.undefined() {
            None
        } else {
            Some(reader.value(1)?)
        };
        let slot = match key.as_str() {
            Some("type") => &mut fields.kind,
            Some("nsp") => &mut fields.nsp,
            Some("data") => &mut fields.data,
            Some("id") => &mut fields.id,
            _ => continue,
        };
        // Keep reading: a malformed message is reported as such first.
        duplicate |= slot.is_some();
        *slot = value;
    }
    reader.end()?;
    if duplicate {
        return Err(DecodeError::BadPacketMap);
    }
    Ok(fields)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn end(&self) -> Result<(), DecodeError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(DecodeError::InvalidMsgpack)
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::InvalidMsgpack)?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::InvalidMsgpack)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn len16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn len32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| DecodeError::InvalidMsgpack)
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Consumes notepack's `undefined` (fixext 1 of type 0) if it comes next.
    fn undefined(&mut self) -> bool {
        let next = self.input.get(self.pos..self.pos.saturating_add(3));
        let found = matches!(next, Some([0xd4, 0x00, _]));
        if found {
            self.pos += 3;
        }
        found
    }

    /// The length of a map if one comes next (its header consumed), else `None` (nothing
    /// consumed).
    fn map_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let Some(&marker) = self.input.get(self.pos) else {
            return Err(DecodeError::InvalidMsgpack);
        };
        let len = match marker {
            0x80..=0x8f => usize::from(marker & 0x0f),
            0xde | 0xdf => {
                self.pos += 1;
                return Ok(Some(if marker == 0xde {
                    self.len16()?
                } else {
                    self.len32()?
                }));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(len))
    }

    /// Reads one value inside a container at nesting level `level` (the packet map is 1).
    fn value(&mut self, level: usize) -> Result<Value, DecodeError> {
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7f => Value::from(marker),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), level)?,
            0x90..=0x9f => self.seq(usize::from(marker & 0x0f), level)?,
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(DecodeError::InvalidMsgpack),
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc5 => {
                let len = self.len16()?;
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc6 => {
                let len = self.len32()?;
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                self.ext(len, true)?
            }
            0xc8 => {
                let len = self.len16()?;
                self.ext(len, true)?
            }
            0xc9 => {
                let len = self.len32()?;
                self.ext(len, true)?
            }
            0xca => Value::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Value::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Value::from(self.u8()?),
            0xcd => Value::from(u16::from_be_bytes(self.array()?)),
            0xce => Value::from(u32::from_be_bytes(self.array()?)),
            0xcf => Value::from(u64::from_be_bytes(self.array()?)),
            0xd0 => Value::from(i8::from_be_bytes(self.array()?)),
            0xd1 => Value::from(i16::from_be_bytes(self.array()?)),
            0xd2 => Value::from(i32::from_be_bytes(self.array()?)),
            0xd3 => Value::from(i64::from_be_bytes(self.array()?)),
            // notepack's `undefined`, where no field can be absent instead.
            0xd4 if self.input.get(self.pos) == Some(&0) => {
                self.take(2)?;
                Value::Nil
            }
            0xd4 => self.ext(1, false)?,
            0xd5 => self.ext(2, false)?,
            0xd6 => self.ext(4, false)?,
            0xd7 => self.ext(8, false)?,
            0xd8 => self.ext(16, false)?,
            0xd9 => {
                let len = usize::from(self.u8()?);
                self.str(len)?
            }
            0xda => {
                let len = self.len16()?;
                self.str(len)?
            }
            0xdb => {
                let len = self.len32()?;
                self.str(len)?
            }
            0xdc => {
                let len = self.len16()?;
                self.seq(len, level)?
            }
            0xdd => {
                let len = self.len32()?;
                self.seq(len, level)?
            }
            0xde => {
                let len = self.len16()?;
                self.map(len, level)?
            }
            0xdf => {
                let len = self.len32()?;
                self.map(len, level)?
            }
            0xe0..=0xff => Value::from(marker as i8),
        })
    }

    fn str(&mut self, len: usize) -> Result<Value, DecodeError> {
        // As Node's Buffer.toString("utf8"): invalid sequences become U+FFFD.
        Ok(Value::from(
            String::from_utf8_lossy(self.take(len)?).into_owned(),
        ))
    }

    /// An extension; notepack writes `ArrayBuffer`s as ext 8/16/32 of type 0.
    fn ext(&mut self, len: usize, sized: bool) -> Result<Value, DecodeError> {
        let [tag] = self.array::<1>()?.map(|b| b as i8);
        let data = self.take(len)?.to_vec();
        Ok(if sized && tag == 0 {
            Value::Binary(data)
        } else {
            Value::Ext(tag, data)
        })
    }

    /// The level of a container inside one at `level`; the packet map's values (`data`) are at
    /// level 2 and may hold `MAX_DEPTH` levels, as in the JSON parser.
    fn enter(level: usize) -> Result<usize, DecodeError> {
        if level > MAX_DEPTH {
            Err(DecodeError::TooDeep)
        } else {
            Ok(level + 1)
        }
    }

    fn seq(&mut self, len: usize, level: usize) -> Result<Value, DecodeError> {
        let level = Self::enter(level)?;
        // A length is only a claim: reserve a little and let the vector grow with what is
        // really there, so nested containers that all lie reserve nothing much together.
        let mut items = Vec::with_capacity(len.min(self.remaining()).min(PREALLOCATE));
        for _ in 0..len {
            items.push(self.value(level)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, level: usize) -> Result<Value, DecodeError> {
        let level = Self::enter(level)?;
        let mut entries = Vec::with_capacity((len.min(self.remaining() / 2)).min(PREALLOCATE));
        for _ in 0..len {
            let key = self.value(level)?;
            let value = self.value(level)?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}
