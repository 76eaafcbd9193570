//! The values that cross between the server and either database: parameters bound into a
//! statement, and the columns of a row read back. Both databases see the same four kinds
//! (integer, real, text, bytes, and NULL), so one body of SQL and one set of conversions serve
//! SQLite and PostgreSQL alike.

use std::fmt;

use super::DbError;

/// One value as SQL sees it, borrowed from a parameter or a row.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer; booleans are 0 and 1.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl fmt::Debug for ValueRef<'_> {
    /// The kind only: values may be secrets (hashes, tokens) and must not reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl ValueRef<'_> {
    /// The value's kind, for error messages (never the value).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Integer(_) => "integer",
            Self::Real(_) => "real",
            Self::Text(_) => "text",
            Self::Blob(_) => "bytes",
        }
    }
}

/// Something that can be bound as a statement parameter.
pub(crate) trait Param: Sync {
    /// The value to bind.
    fn value(&self) -> ValueRef<'_>;
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> ValueRef<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, Param::value)
    }
}

impl Param for i64 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Integer(*self)
    }
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> ValueRef<'_> {
                ValueRef::Integer(i64::from(*self))
            }
        }
    )*};
}
integer_params!(i32, u32, u16, u8, bool);

impl Param for u64 {
    /// Values beyond `i64::MAX` saturate: counts and times here never get there, and a
    /// saturated bound still compares the right way.
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Param for usize {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Param for f64 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl Param for zeroize::Zeroizing<Vec<u8>> {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

/// The parameters of one statement, in order (`?1` is the first).
pub(crate) type Params<'a> = [&'a dyn Param];

/// Builds [`Params`] from a list of values: `params![id, now]`.
#[macro_export]
#[doc(hidden)]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::Param] };
    ($($value:expr),+ $(,)?) => { &[$(&$value as &dyn $crate::store::Param),+] as &[&dyn $crate::store::Param] };
}

/// A value read from a column.
pub(crate) trait FromValue: Sized {
    /// Converts the column's value, or says why it cannot.
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError>;
}

fn mismatch<T>(value: ValueRef<'_>, wanted: &'static str) -> Result<T, DbError> {
    Err(DbError::Value(format!(
        "a column holds {} where {wanted} was expected",
        value.kind()
    )))
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Integer(i) => Ok(i),
            other => mismatch(other, "an integer"),
        }
    }
}

macro_rules! narrow_integers {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
                let wide = i64::from_value(value)?;
                <$t>::try_from(wide).map_err(|_| {
                    DbError::Value(format!(
                        "an integer column is out of range for {}",
                        stringify!($t)
                    ))
                })
            }
        }
    )*};
}
narrow_integers!(i32, u32, u64, u16, u8, usize);

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Real(r) => Ok(r),
            // An integer-valued expression (`avg` of integers is real in both, `1.0 * x` too,
            // but a constant may come back as an integer).
            #[allow(clippy::cast_precision_loss)]
            ValueRef::Integer(i) => Ok(i as f64),
            other => mismatch(other, "a number"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Text(t) => Ok(t.to_owned()),
            other => mismatch(other, "text"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            other => mismatch(other, "bytes"),
        }
    }
}

impl<const N: usize> FromValue for [u8; N] {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match value {
            ValueRef::Blob(b) => b.try_into().map_err(|_| {
                DbError::Value(format!(
                    "a column holds {} bytes where {N} were expected",
                    b.len()
                ))
            }),
            other => mismatch(other, "bytes"),
        }
    }
}

/// One row of a result, from either database.
pub(crate) struct Row<'a>(pub(super) RowInner<'a>);

pub(super) enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// The number of columns.
    #[cfg(feature = "testing")]
    pub(crate) fn len(&self) -> usize {
        match &self.0 {
            RowInner::Sqlite(row) => row.as_ref().column_count(),
            RowInner::Postgres(row) => row.len(),
        }
    }

    /// Column `index` shown as text, whatever its type (`None` for NULL): integers and reals
    /// in decimal, bytes in hex. For tests.
    #[cfg(feature = "testing")]
    pub(crate) fn shown(&self, index: usize) -> Result<Option<String>, DbError> {
        struct Shown(Option<String>);
        impl FromValue for Shown {
            fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
                Ok(Shown(match value {
                    ValueRef::Null => None,
                    ValueRef::Integer(i) => Some(i.to_string()),
                    ValueRef::Real(r) => Some(r.to_string()),
                    ValueRef::Text(t) => Some(t.to_owned()),
                    ValueRef::Blob(b) => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
                }))
            }
        }
        Ok(self.get::<Shown>(index)?.0)
    }

    /// Column `index` (from 0), converted.
    pub(crate) fn get<T: FromValue>(&self, index: usize) -> Result<T, DbError> {
        match &self.0 {
            RowInner::Sqlite(row) => {
                let value = row.get_ref(index)?;
                T::from_value(super::sqlite::value_ref(value))
            }
            RowInner::Postgres(row) => super::postgres::column(row, index, T::from_value),
        }
    }
}
