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
    name: String,
    #[encrypt]
    age: String,
}

fn main() {}
