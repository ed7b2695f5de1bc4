//! The output buffers: allocated once at their final size (from the pool), split into disjoint
//! per-date slices for the parallel fill, and finished into Arrow arrays.

use std::sync::Arc;

use arrow::array::{
    make_array, new_empty_array, Array, ArrayData, ArrayRef, BooleanBufferBuilder, DictionaryArray, PrimitiveArray,
};
use arrow::buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow::compute::concat;
use arrow::datatypes::{ArrowDictionaryKeyType, Date32Type, Int16Type, Int32Type, Int8Type};

use super::DayPart;
use crate::codes::{self, Width};
use crate::query::pool::{Lease, OutputPool};
use crate::types::ValueType;

/// One field's output.
pub(super) enum Output {
    /// Fixed-width values, written in place.
    Fixed { width: usize, values: Lease },
    /// Booleans and text, assembled per date.
    Taken,
}

pub(super) enum FieldRest<'a> {
    Fixed { width: usize, values: &'a mut [u8] },
    Taken,
}

pub(super) enum FieldSlice<'a> {
    Fixed { width: usize, values: &'a mut [u8] },
    Taken,
}

pub(super) struct DayOut<'a> {
    pub(super) dates: CodeSlice<'a>,
    pub(super) codes: CodeSlice<'a>,
    pub(super) fields: Vec<FieldSlice<'a>>,
}

/// A buffer of per-row integers, 8, 16 or 32 bits wide: dictionary codes, or dates.
pub(super) struct Codes {
    lease: Lease,
    width: Width,
    rows: usize,
}

impl Codes {
    /// Codes into `levels` symbols, as wide as [`Width::of_symbols`] says.
    pub(super) fn symbols(levels: usize, rows: usize, pool: &OutputPool) -> Self {
        Self::of(Width::of_symbols(levels), rows, pool)
    }

    /// Codes into `levels` dates, as wide as [`Width::of_dates`] says.
    pub(super) fn dates(levels: usize, rows: usize, pool: &OutputPool) -> Self {
        Self::of(Width::of_dates(levels), rows, pool)
    }

    /// Dates themselves, as Date32.
    pub(super) fn wide(rows: usize, pool: &OutputPool) -> Self {
        Self::of(Width::I32, rows, pool)
    }

    fn of(width: Width, rows: usize, pool: &OutputPool) -> Self {
        Self { lease: pool.take(rows * width.bytes()), width, rows }
    }

    pub(super) fn slice(&mut self) -> CodeSlice<'_> {
        match self.width {
            Width::I8 => CodeSlice::Tiny(self.lease.typed_mut::<i8>()),
            Width::I16 => CodeSlice::Narrow(self.lease.typed_mut::<i16>()),
            Width::I32 => CodeSlice::Wide(self.lease.typed_mut::<i32>()),
        }
    }

    pub(super) fn into_dictionary(self, values: ArrayRef) -> ArrayRef {
        /// The keys as a dictionary into `values`, once `below` proved each indexes them.
        fn keyed<K: ArrowDictionaryKeyType>(
            buffer: Buffer,
            rows: usize,
            values: ArrayRef,
            below: fn(&[K::Native], usize) -> bool,
        ) -> ArrayRef {
            let keys = PrimitiveArray::<K>::new(ScalarBuffer::new(buffer, 0, rows), None);
            assert!(below(keys.values(), values.len()), "codes index the values");
            // SAFETY: every key was just checked to index `values`, and none is null.
            Arc::new(unsafe { DictionaryArray::new_unchecked(keys, values) })
        }
        let buffer = self.lease.into_buffer();
        match self.width {
            Width::I8 => keyed::<Int8Type>(buffer, self.rows, values, codes::i8_below),
            Width::I16 => keyed::<Int16Type>(buffer, self.rows, values, codes::i16_below),
            Width::I32 => keyed::<Int32Type>(buffer, self.rows, values, codes::i32_below),
        }
    }

    pub(super) fn into_dates(self) -> ArrayRef {
        debug_assert_eq!(self.width, Width::I32);
        Arc::new(PrimitiveArray::<Date32Type>::new(ScalarBuffer::new(self.lease.into_buffer(), 0, self.rows), None))
    }
}

/// Part of a [`Codes`] buffer.
pub(super) enum CodeSlice<'a> {
    Tiny(&'a mut [i8]),
    Narrow(&'a mut [i16]),
    Wide(&'a mut [i32]),
}

impl<'a> CodeSlice<'a> {
    pub(super) fn len(&self) -> usize {
        match self {
            CodeSlice::Tiny(s) => s.len(),
            CodeSlice::Narrow(s) => s.len(),
            CodeSlice::Wide(s) => s.len(),
        }
    }

    /// Splits off the first `n` values.
    pub(super) fn take(&mut self, n: usize) -> CodeSlice<'a> {
        fn split<'a, T>(s: &mut &'a mut [T], n: usize) -> &'a mut [T] {
            let (head, tail) = std::mem::take(s).split_at_mut(n);
            *s = tail;
            head
        }
        match self {
            CodeSlice::Tiny(s) => CodeSlice::Tiny(split(s, n)),
            CodeSlice::Narrow(s) => CodeSlice::Narrow(split(s, n)),
            CodeSlice::Wide(s) => CodeSlice::Wide(split(s, n)),
        }
    }

    /// Sets row `j`; the buffer is as wide as its levels need, so `value` fits.
    pub(super) fn set(&mut self, j: usize, value: i32) {
        match self {
            CodeSlice::Tiny(s) => s[j] = value as i8,
            CodeSlice::Narrow(s) => s[j] = value as i16,
            CodeSlice::Wide(s) => s[j] = value,
        }
    }

    pub(super) fn fill(&mut self, value: i32) {
        match self {
            CodeSlice::Tiny(s) => s.fill(value as i8),
            CodeSlice::Narrow(s) => s.fill(value as i16),
            CodeSlice::Wide(s) => s.fill(value),
        }
    }
}

impl Output {
    pub(super) fn new(dtype: ValueType, rows: usize, pool: &OutputPool) -> Self {
        match (dtype, dtype.width()) {
            (ValueType::Bool, _) | (_, None) => Output::Taken,
            (_, Some(width)) => Output::Fixed { width, values: pool.take(rows * width) },
        }
    }

    pub(super) fn rest(&mut self) -> FieldRest<'_> {
        match self {
            Output::Fixed { width, values } => FieldRest::Fixed { width: *width, values: values.typed_mut() },
            Output::Taken => FieldRest::Taken,
        }
    }

    /// The field's array from what each date added, with its row count.
    pub(super) fn finish<'p>(
        self,
        dtype: ValueType,
        rows: usize,
        days: impl Iterator<Item = (&'p DayPart, usize)>,
    ) -> ArrayRef {
        match self {
            Output::Fixed { values, .. } => {
                let mut validity: Option<BooleanBufferBuilder> = None;
                let mut done = 0;
                for (part, n) in days {
                    if let DayPart::Validity(bits) = part {
                        let validity = validity.get_or_insert_with(|| {
                            let mut all = BooleanBufferBuilder::new(rows);
                            all.append_n(done, true);
                            all
                        });
                        validity.append_buffer(bits);
                    } else if let Some(validity) = &mut validity {
                        validity.append_n(n, true);
                    }
                    done += n;
                }
                let data = ArrayData::builder(dtype.arrow())
                    .len(rows)
                    .add_buffer(values.into_buffer())
                    .nulls(validity.map(|mut v| NullBuffer::new(v.finish())))
                    .build()
                    .expect("buffers sized for the rows");
                make_array(data)
            }
            Output::Taken => {
                let parts: Vec<&dyn Array> = days
                    .filter_map(|(part, _)| match part {
                        DayPart::Array(array) => Some(array.as_ref()),
                        _ => None,
                    })
                    .collect();
                if parts.is_empty() {
                    new_empty_array(&dtype.arrow())
                } else {
                    concat(&parts).expect("parts share one type")
                }
            }
        }
    }
}

impl<'a> FieldRest<'a> {
    pub(super) fn take(&mut self, n: usize) -> FieldSlice<'a> {
        match self {
            FieldRest::Fixed { width, values } => {
                let (head, tail) = std::mem::take(values).split_at_mut(n * *width);
                *values = tail;
                FieldSlice::Fixed { width: *width, values: head }
            }
            FieldRest::Taken => FieldSlice::Taken,
        }
    }
}
