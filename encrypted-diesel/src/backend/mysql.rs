use diesel::mysql::{Mysql, MysqlValue};

impl super::ReadText for Mysql {
    fn with_text<R>(value: MysqlValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R {
        read(value.as_bytes())
    }
}
