diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        hashed_name -> Text,
        age -> Integer,
    }
}

#[derive(encrypted_diesel::Encrypted)]
#[encrypted(table = users, resource = "users.example.com", aad = "{resource}/{hashed_nmae}")]
struct User {
    id: i64,
    #[encrypt(hash = hashed_name)]
    name: String,
}

fn main() {}
