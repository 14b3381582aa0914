use diesel::sqlite::{Sqlite, SqliteValue};

impl super::ReadText for Sqlite {
    fn with_text<R>(mut value: SqliteValue<'_, '_, '_>, read: impl FnOnce(&[u8]) -> R) -> R {
        read(value.read_text().as_bytes())
    }
}
