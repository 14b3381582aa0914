use diesel::pg::{Pg, PgValue};

impl super::ReadText for Pg {
    fn with_text<R>(value: PgValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R {
        read(value.as_bytes())
    }
}
