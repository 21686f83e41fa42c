//! [`PayloadError`]: what was wrong with a payload or a value, in words that need no bincode.

use bincode::error::{AllowedEnumVariants, IntegerType};
use std::fmt;

/// What was wrong with a payload's bytes, or with a value being encoded.
///
/// Payloads (task arguments and outputs) and protocol messages decode through
/// the same bounded path, so every decoding error of the crate carries one of
/// these as its cause. `Display` is a sentence; `Debug` is the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// The bytes end before the value does.
    Truncated {
        /// At least this many more bytes were needed (bincode knows only
        /// how many the read it was doing lacked, not the rest of the value).
        missing: usize,
    },
    /// The value ends before the bytes do.
    TrailingBytes {
        /// Bytes the value used.
        used: usize,
        /// Bytes there were.
        len: usize,
    },
    /// A length prefix claims more bytes than the input could hold (a string
    /// or a byte buffer longer than everything that arrived).
    LengthOverInput,
    /// More sequence elements or map entries than the input can account for:
    /// one per byte, plus [`ZERO_SIZED_ALLOWANCE`](crate::ZERO_SIZED_ALLOWANCE)
    /// that take no bytes.
    TooManyElements {
        /// The elements this input allowed.
        limit: u64,
    },
    /// Values nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    TooDeep {
        /// The depth limit.
        limit: usize,
    },
    /// The type refused the bytes: its own `Deserialize` said so (serde's
    /// messages, or a custom one), or the bytes hold no valid value of a
    /// primitive (bad UTF-8, an invalid bool or char, an integer out of
    /// range, an enum variant that does not exist).
    Invalid(String),
    /// The type needs what bincode does not do: decoding, a self-describing
    /// format (`deserialize_any`, identifiers, `ignored_any`, as untagged and
    /// internally tagged enums, `#[serde(flatten)]` and dynamic values like
    /// `serde_json::Value` use); encoding, a sequence whose length is not
    /// known up front.
    Unsupported(String),
    /// The value refused to be encoded: its `Serialize` said so (a custom
    /// message), or a part of it could not be read (a poisoned lock, a
    /// borrowed `RefCell`, a path that is not UTF-8).
    Unencodable(String),
    /// The type's `Deserialize` panicked; this is the panic's message. Only
    /// [`Task::decode_args`](crate::Task::decode_args) and
    /// [`Task::decode_output`](crate::Task::decode_output) catch panics.
    Panicked(String),
    /// The peer (a worker) met a codec failure and reported its cause in
    /// these words; its type did not cross the process boundary.
    Remote(String),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { missing } => write!(
                f,
                "the bytes end at least {} before the value does",
                bytes(*missing)
            ),
            Self::TrailingBytes { used, len } => {
                let left = len.saturating_sub(*used);
                let verb = if left == 1 { "is" } else { "are" };
                write!(
                    f,
                    "{} {verb} left over after the value ({used} of {len} used)",
                    bytes(left)
                )
            }
            Self::LengthOverInput => {
                f.write_str("a length prefix claims more bytes than the input holds")
            }
            Self::TooManyElements { limit } => write!(
                f,
                "more than {limit} sequence or map elements: the input allows one per byte \
                 plus {} that take no bytes (the allowance for zero-sized elements)",
                crate::ZERO_SIZED_ALLOWANCE
            ),
            Self::TooDeep { limit } => write!(f, "values nest deeper than {limit} levels"),
            Self::Invalid(message)
            | Self::Unsupported(message)
            | Self::Unencodable(message)
            | Self::Remote(message) => f.write_str(message),
            Self::Panicked(message) => write!(f, "its Deserialize panicked: {message}"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// "1 byte", "3 bytes".
fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// The sentence of a `deserialize_*` that needs a self-describing format.
fn self_describing(asked: &str) -> PayloadError {
    PayloadError::Unsupported(format!(
        "the type needs a self-describing format, which bincode is not (it asked for {asked})"
    ))
}

impl PayloadError {
    /// What a bincode decoding error means, in words.
    pub(crate) fn from_decode(e: bincode::error::DecodeError) -> Self {
        use bincode::error::DecodeError as E;
        use bincode::serde::DecodeError as Serde;
        let invalid = |message: String| Self::Invalid(format!("invalid value: {message}"));
        match e {
            E::UnexpectedEnd { additional } => Self::Truncated {
                missing: additional,
            },
            E::LimitExceeded => Self::LengthOverInput,
            E::InvalidIntegerType {
                expected,
                found: IntegerType::Reserved,
            } => invalid(format!(
                "a reserved varint marker where a {} is expected",
                integer_name(&expected)
            )),
            E::InvalidIntegerType { expected, found } => invalid(format!(
                "an integer encoded as a {} where a {} is expected, out of its range",
                integer_name(&found),
                integer_name(&expected)
            )),
            E::NonZeroTypeIsZero { non_zero_type } => invalid(format!(
                "zero for a non-zero {}",
                integer_name(&non_zero_type)
            )),
            E::UnexpectedVariant {
                type_name,
                allowed,
                found,
            } => invalid(format!(
                "variant {found} of {type_name}, which has {}",
                allowed_variants(allowed)
            )),
            E::Utf8 { inner } => invalid(format!("a string that is not UTF-8 ({inner})")),
            E::InvalidCharEncoding(b) => invalid(format!(
                "the bytes {:#04x} {:#04x} {:#04x} {:#04x} where a char is expected, \
                 which are no UTF-8 character",
                b[0], b[1], b[2], b[3]
            )),
            E::InvalidBooleanValue(b) => invalid(format!("{b} for a bool, which is 0 or 1")),
            E::ArrayLengthMismatch { required, found } => invalid(format!(
                "an array of {found} elements where the type has {required}"
            )),
            E::OutsideUsizeRange(n) => invalid(format!("{n}, beyond this machine's usize")),
            E::EmptyEnum { type_name } => {
                invalid(format!("a value of {type_name}, an enum without variants"))
            }
            E::InvalidDuration { secs, nanos } => invalid(format!(
                "a duration of {secs} s and {nanos} ns, which overflows"
            )),
            E::InvalidSystemTime { duration } => invalid(format!(
                "a time {} s after the Unix epoch, beyond what this system can hold",
                duration.as_secs()
            )),
            E::CStringNulError { position } => {
                invalid(format!("a C string with a NUL byte at {position}"))
            }
            E::Io { inner, additional } => Self::Invalid(format!(
                "reading the bytes failed ({inner}), {} short",
                bytes(additional)
            )),
            E::Other(message) => Self::Invalid(message.to_owned()),
            // serde's messages (`invalid type: ...`, `invalid length ...`) and
            // the type's own, through `de::Error::custom`.
            E::OtherString(message) => Self::Invalid(message),
            E::Serde(Serde::AnyNotSupported) => self_describing(
                "deserialize_any: an untagged or internally tagged enum, \
                 #[serde(flatten)] or a dynamic value",
            ),
            E::Serde(Serde::IdentifierNotSupported) => {
                self_describing("deserialize_identifier: a field or variant by its name")
            }
            E::Serde(Serde::IgnoredAnyNotSupported) => {
                self_describing("deserialize_ignored_any: to skip a value it does not know")
            }
            E::Serde(Serde::CannotBorrowOwnedData) => Self::Unsupported(
                "the type borrows from bytes that the decoder cannot lend".to_owned(),
            ),
            E::Serde(_) => Self::Unsupported("bincode cannot decode this type".to_owned()),
            _ => Self::Invalid("the bytes hold no valid value of the type".to_owned()),
        }
    }

    /// What a bincode encoding error means, in words.
    pub(crate) fn from_encode(e: bincode::error::EncodeError) -> Self {
        use bincode::error::EncodeError as E;
        use bincode::serde::EncodeError as Serde;
        match e {
            E::UnexpectedEnd => Self::Unencodable("the output buffer is full".to_owned()),
            E::RefCellAlreadyBorrowed { type_name, .. } => Self::Unencodable(format!(
                "a {type_name} is mutably borrowed while the value is encoded"
            )),
            E::Other(message) => Self::Unencodable(message.to_owned()),
            // The value's own `Serialize`, through `ser::Error::custom`.
            E::OtherString(message) => Self::Unencodable(message),
            E::InvalidPathCharacters => Self::Unencodable("a path is not valid UTF-8".to_owned()),
            E::Io { inner, index } => Self::Unencodable(format!(
                "writing the bytes failed after {}: {inner}",
                bytes(index)
            )),
            E::LockFailed { type_name } => {
                Self::Unencodable(format!("a {type_name} cannot be locked (it is poisoned)"))
            }
            E::InvalidSystemTime { .. } => {
                Self::Unencodable("a SystemTime before the Unix epoch".to_owned())
            }
            E::Serde(Serde::SequenceMustHaveLength) => Self::Unsupported(
                "the value serializes a sequence or map without saying its length first, \
                 which bincode needs (collect it into a Vec or a map)"
                    .to_owned(),
            ),
            E::Serde(_) => Self::Unsupported("bincode cannot encode this value".to_owned()),
            _ => Self::Unencodable("the value cannot be encoded".to_owned()),
        }
    }
}

/// An integer type's Rust name.
fn integer_name(t: &IntegerType) -> &'static str {
    match t {
        IntegerType::U8 => "u8",
        IntegerType::U16 => "u16",
        IntegerType::U32 => "u32",
        IntegerType::U64 => "u64",
        IntegerType::U128 => "u128",
        IntegerType::Usize => "usize",
        IntegerType::I8 => "i8",
        IntegerType::I16 => "i16",
        IntegerType::I32 => "i32",
        IntegerType::I64 => "i64",
        IntegerType::I128 => "i128",
        IntegerType::Isize => "isize",
        _ => "integer",
    }
}

/// "variants 0 to 1", "variants 0, 2 and 5".
fn allowed_variants(allowed: &AllowedEnumVariants) -> String {
    match allowed {
        AllowedEnumVariants::Range { min, max } => format!("variants {min} to {max}"),
        AllowedEnumVariants::Allowed(list) => {
            let list: Vec<String> = list.iter().map(u32::to_string).collect();
            format!("variants {}", list.join(", "))
        }
        _ => "other variants".to_owned(),
    }
}
