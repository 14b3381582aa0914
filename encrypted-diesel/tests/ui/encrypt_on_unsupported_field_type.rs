diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        hashed_name -> Text,
        age -> Integer,
    }
}

#[derive(encrypted_diesel::Encrypted)]
#[encrypted(table = users, resource = "users.example.com")]
struct User {
    id: i64,
    #[encrypt]
    name: i32,
}

fn main() {}
