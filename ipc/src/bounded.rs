//! Decoding bounded by its input: a serde adapter after dtolnay's `serde_path_to_error`.
//!
//! bincode decodes a sequence or a map by looping as many times as its
//! length prefix says. When the elements take bytes, the input runs out and
//! the loop ends; when they take none (`()`, a unit struct, `PhantomData`,
//! `[u8; 0]`, a struct whose fields are all skipped), nine bytes announcing
//! 2^62 elements keep a thread busy for ever. And a recursive type (`enum
//! Tree { Leaf, Node(Box<Tree>) }`) lets a frame of hostile bytes nest deep
//! enough to overflow the stack of the thread that decodes it, which in the
//! parent is the user's thread.
//!
//! The adapter follows the pattern of `serde_path_to_error` and
//! `serde_ignored`: it wraps the deserializer, every visitor given to it, every
//! `SeqAccess` / `MapAccess` / `EnumAccess` / `VariantAccess` the inner
//! deserializer hands to a visitor, and every seed passed through those, so
//! that nested values are wrapped too. Along the way it keeps two counts for
//! one decode of one input (a [`Budget`]):
//!
//! - an element budget shared by the whole value, of `input.len() +
//!   ZERO_SIZED_ALLOWANCE`: each sequence element and each map entry (the
//!   lengths that come from the data) draws one from it. A sequence draws its
//!   announced length at once when it begins (bincode announces exactly how
//!   many elements follow), so a lying length fails before the first element
//!   and the loop over the elements only counts down a local number; should
//!   more elements come than were announced, each of those draws one. Tuple
//!   and struct fields (lengths the type fixes) draw nothing. An element that
//!   takes bytes is bounded by the input anyway; so at most the allowance of
//!   elements may take none.
//! - the nesting depth, carried by value in each wrapper: a sequence, map,
//!   enum, `Some` or newtype struct one level deeper than its parent.
//!
//! A limit reports through the inner deserializer's error (serde leaves no
//! other way out), and records which one was hit in the budget, so that the
//! caller turns it into a typed [`PayloadError`] without parsing text.
//!
//! Primitives (`deserialize_u64`, `deserialize_str`, ...) go to the inner
//! deserializer with their visitor unwrapped: bincode is not self-describing,
//! so a primitive's visitor is only ever handed that primitive. A batch of
//! numbers thus costs a countdown per element and nothing else: 5% more
//! instructions than bincode alone for 1,000 `u64`s, 2% for 1,000 strings.

use crate::payload_error::PayloadError;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::cell::Cell;
use std::fmt;

/// How many sequence elements or map entries one decoded value may hold
/// beyond one per byte of its input, 2^20: room for the elements that take no
/// bytes of their own (values of a zero-sized type such as `()`, a unit
/// struct or `PhantomData`).
///
/// It equals [`MAX_BATCH`](crate::MAX_BATCH) so that a `map` chunk of the
/// largest size still decodes when its elements are zero-sized (a `map` over
/// `()` arguments); and it keeps what hostile bytes can make a decode do to
/// about a million cheap steps, milliseconds, where the length prefix alone
/// would allow 2^64.
pub const ZERO_SIZED_ALLOWANCE: usize = crate::MAX_BATCH;

/// How deep values may nest: sequences, maps, enums, `Some`s and newtype
/// structs inside one another, counted from the outermost value.
///
/// Decoding recurses once per level, on the thread that decodes: in the
/// parent, the user's thread, whose stack may be a spawned thread's 2 MiB or
/// less. A level costs about 200 bytes of stack in an optimised build and
/// 1.5-2.5 KiB in a debug one (measured with a recursive enum and a linked
/// list), so 256 levels take some 50 KiB, or 0.6 MiB unoptimised; without a
/// limit, a 64 MiB frame of hostile bytes could nest a recursive type
/// millions of levels deep and overflow any stack (an abort, not a panic).
/// The price: a legitimately deep value, such as a linked list of more than
/// 256 nodes built from `Option<Box<Node>>` or an enum, cannot be a payload;
/// send it as a `Vec` instead. (Tuples and struct fields do not
/// count: a recursive type can only end through an enum, an `Option` or a
/// collection, all of which do.)
pub const MAX_DEPTH: usize = 256;

/// Which limit stopped a decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Elements,
    Depth,
}

/// The state one decode of one input shares between all its wrappers.
pub(crate) struct Budget {
    /// Elements that may still be drawn.
    elements_left: Cell<usize>,
    /// The budget this decode started with, for the error.
    elements: usize,
    /// The limit that stopped the decode, if one did.
    hit: Cell<Option<Limit>>,
}

impl Budget {
    /// The budget of a decode of `input_len` bytes.
    pub(crate) fn for_input(input_len: usize) -> Self {
        let elements = input_len.saturating_add(ZERO_SIZED_ALLOWANCE);
        Self {
            elements_left: Cell::new(elements),
            elements,
            hit: Cell::new(None),
        }
    }

    /// Takes one element from the budget.
    #[inline]
    fn draw<E: de::Error>(&self) -> Result<(), E> {
        match self.elements_left.get().checked_sub(1) {
            Some(left) => {
                self.elements_left.set(left);
                Ok(())
            }
            None => Err(self.exceeded(Limit::Elements)),
        }
    }

    /// Takes `n` elements from the budget.
    #[inline]
    fn draw_n<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.elements_left.get().checked_sub(n) {
            Some(left) => {
                self.elements_left.set(left);
                Ok(())
            }
            None => Err(self.exceeded(Limit::Elements)),
        }
    }

    /// Records that `limit` was hit and builds the error that unwinds the
    /// decode (its text is only seen if a type swallows it and fails
    /// otherwise).
    #[cold]
    #[inline(never)]
    fn exceeded<E: de::Error>(&self, limit: Limit) -> E {
        self.hit.set(Some(limit));
        match limit {
            Limit::Elements => E::custom(format_args!(
                "more than {} sequence elements",
                self.elements
            )),
            Limit::Depth => E::custom(format_args!("values nest deeper than {MAX_DEPTH} levels")),
        }
    }

    /// The error of a decode that failed: the limit it hit, or else what
    /// bincode reported.
    pub(crate) fn error(&self, e: bincode::error::DecodeError) -> PayloadError {
        match self.hit.get() {
            Some(Limit::Elements) => PayloadError::TooManyElements {
                limit: self.elements as u64,
            },
            Some(Limit::Depth) => PayloadError::TooDeep { limit: MAX_DEPTH },
            None => PayloadError::from_decode(e),
        }
    }

    /// The outermost seed: deserializes `seed`'s value through the adapter.
    pub(crate) fn seed<S>(&self, seed: S) -> Seed<'_, S, false> {
        Seed {
            inner: seed,
            budget: self,
            depth: 0,
        }
    }
}

/// A deserializer wrapped: at `depth`, drawing from `budget`.
pub(crate) struct De<'b, D> {
    de: D,
    budget: &'b Budget,
    depth: usize,
}

impl<'b, D> De<'b, D> {
    /// The depth of a value nested in this one, or the error when it would
    /// pass [`MAX_DEPTH`].
    #[inline]
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth < MAX_DEPTH {
            Ok(self.depth + 1)
        } else {
            Err(self.budget.exceeded(Limit::Depth))
        }
    }

    #[inline]
    fn visitor<V, const DRAW: bool>(&self, visitor: V, depth: usize) -> Wrap<'b, V, DRAW> {
        Wrap {
            inner: visitor,
            budget: self.budget,
            depth,
        }
    }
}

/// A visitor, an access or a seed wrapped, at `depth`, drawing from `budget`.
/// For a visitor, `DRAW` says whether the elements of a sequence it meets
/// come from the data (a `Vec`: they draw from the budget) or from the type
/// (a tuple, a struct); for a seed, whether it draws one element.
pub(crate) struct Wrap<'b, T, const DRAW: bool> {
    inner: T,
    budget: &'b Budget,
    depth: usize,
}

impl<'b, T, const DRAW: bool> Wrap<'b, T, DRAW> {
    /// Wraps `inner` at the same depth and budget, with another `DRAW`.
    #[inline]
    fn wrap<U, const D: bool>(&self, inner: U) -> Wrap<'b, U, D> {
        Wrap {
            inner,
            budget: self.budget,
            depth: self.depth,
        }
    }

    #[inline]
    fn de<D>(&self, de: D) -> De<'b, D> {
        De {
            de,
            budget: self.budget,
            depth: self.depth,
        }
    }
}

/// A seed wrapped: deserializes through [`De`], after drawing one element
/// from the budget when `DRAW` (it is then a sequence element or a map key,
/// and the inner access calls it only when the data holds one more).
pub(crate) type Seed<'b, S, const DRAW: bool> = Wrap<'b, S, DRAW>;

impl<'de, S: DeserializeSeed<'de>, const DRAW: bool> DeserializeSeed<'de> for Wrap<'_, S, DRAW> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        if DRAW {
            self.budget.draw::<D::Error>()?;
        }
        let de = self.de(deserializer);
        self.inner.deserialize(de)
    }
}

/// Forwards `deserialize_*` methods of primitives with the visitor unwrapped.
macro_rules! forward_primitives {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<'_, D> {
    type Error = D::Error;

    forward_primitives! {
        deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_identifier
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_unit_struct(name, visitor)
    }

    // bincode refuses these two; a self-describing format could hand the
    // visitor anything, so it is wrapped as for a sequence.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, true>(visitor, depth);
        self.de.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, true>(visitor, depth);
        self.de.deserialize_ignored_any(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, false>(visitor, depth);
        self.de.deserialize_option(visitor)
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, false>(visitor, depth);
        self.de.deserialize_newtype_struct(name, visitor)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, true>(visitor, depth);
        self.de.deserialize_seq(visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, true>(visitor, depth);
        self.de.deserialize_map(visitor)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let depth = self.nested::<D::Error>()?;
        let visitor = self.visitor::<V, false>(visitor, depth);
        self.de.deserialize_enum(name, variants, visitor)
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor::<V, false>(visitor, self.depth);
        self.de.deserialize_tuple(len, visitor)
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor::<V, false>(visitor, self.depth);
        self.de.deserialize_tuple_struct(name, len, visitor)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor::<V, false>(visitor, self.depth);
        self.de.deserialize_struct(name, fields, visitor)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// Forwards `visit_*` methods that carry a plain value.
macro_rules! forward_visits {
    ($($method:ident: $ty:ty,)*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>, const DRAW: bool> Visitor<'de> for Wrap<'_, V, DRAW> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits! {
        visit_bool: bool,
        visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128,
        visit_f32: f32, visit_f64: f64, visit_char: char,
        visit_str: &str, visit_borrowed_str: &'de str, visit_string: String,
        visit_bytes: &[u8], visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>,
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let de = self.de(deserializer);
        self.inner.visit_some(de)
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let de = self.de(deserializer);
        self.inner.visit_newtype_struct(de)
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let prepaid = match seq.size_hint() {
            Some(len) if DRAW => {
                self.budget.draw_n::<A::Error>(len)?;
                len
            }
            _ => 0,
        };
        let seq = Seq::<A, DRAW> {
            inner: seq,
            budget: self.budget,
            depth: self.depth,
            prepaid,
        };
        self.inner.visit_seq(seq)
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap::<A, true>(map);
        self.inner.visit_map(map)
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap::<A, false>(data);
        self.inner.visit_enum(data)
    }
}

/// A sequence's access, wrapped.
pub(crate) struct Seq<'b, A, const DRAW: bool> {
    inner: A,
    budget: &'b Budget,
    depth: usize,
    /// Elements drawn for this sequence when it began and not yet used.
    prepaid: usize,
}

/// A sequence's elements. When `DRAW`, each takes one of the elements the
/// sequence drew when it began, and once those are used (more elements than
/// announced) draws one from the budget.
impl<'de, A: SeqAccess<'de>, const DRAW: bool> SeqAccess<'de> for Seq<'_, A, DRAW> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        if DRAW {
            if self.prepaid == 0 {
                let seed = Wrap::<T, true> {
                    inner: seed,
                    budget: self.budget,
                    depth: self.depth,
                };
                return self.inner.next_element_seed(seed);
            }
            // An element was announced, so one comes (or the input ends).
            self.prepaid -= 1;
        }
        let seed = Wrap::<T, false> {
            inner: seed,
            budget: self.budget,
            depth: self.depth,
        };
        self.inner.next_element_seed(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A map's entries: each key draws from the budget.
impl<'de, A: MapAccess<'de>, const DRAW: bool> MapAccess<'de> for Wrap<'_, A, DRAW> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap::<K, true>(seed);
        self.inner.next_key_seed(seed)
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap::<T, false>(seed);
        self.inner.next_value_seed(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'b, 'de, A: EnumAccess<'de>, const DRAW: bool> EnumAccess<'de> for Wrap<'b, A, DRAW> {
    type Error = A::Error;
    type Variant = Wrap<'b, A::Variant, false>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        // The variant's identifier is a number (bincode reads a u32 and hands
        // it over in serde's own `U32Deserializer`): nothing to bound.
        let Wrap {
            inner,
            budget,
            depth,
        } = self;
        let (value, variant) = inner.variant_seed(seed)?;
        let variant = Wrap {
            inner: variant,
            budget,
            depth,
        };
        Ok((value, variant))
    }
}

impl<'de, A: VariantAccess<'de>, const DRAW: bool> VariantAccess<'de> for Wrap<'_, A, DRAW> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap::<T, false>(seed);
        self.inner.newtype_variant_seed(seed)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap::<V, false>(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap::<V, false>(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}
