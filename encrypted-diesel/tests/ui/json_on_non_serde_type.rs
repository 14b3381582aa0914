diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        hashed_name -> Text,
        age -> Integer,
    }
}

struct NotSerde;

#[derive(encrypted_diesel::Encrypted)]
#[encrypted(table = users, resource = "users.example.com")]
struct User {
    id: i64,
    #[encrypt(json)]
    name: NotSerde,
}

fn main() {}
