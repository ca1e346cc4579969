//! Golden bytes of every call, reply and error as nodes send them. The constants were
//! taken from the encoding of the build of 2026-12-07, when these types lived in
//! `galilean_actors::remote`: what a node of that build sends must still decode.

use super::*;
use crate::models::ProgressEvent;
use crate::records::{Owner, TokenRecord, UserRecord, FORMAT};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn spec() -> NewToken {
    NewToken {
        owner: Owner::User("alice".into()),
        scopes: vec!["read:users".into()],
        note: "n".into(),
        expires_in: Some(60),
        session_id: None,
        client_id: "jupyterhub".into(),
    }
}

fn calls() -> Vec<Call> {
    vec![
        Call::CreateUser {
            name: "alice".into(),
            admin: true,
        },
        Call::SetAdmin {
            name: "alice".into(),
            admin: false,
        },
        Call::DeleteUser {
            name: "alice".into(),
        },
        Call::CreateToken {
            name: "alice".into(),
            spec: spec(),
        },
        Call::DeleteToken {
            name: "alice".into(),
            id: 12,
        },
        Call::EndSession {
            name: "alice".into(),
            session_id: "s1".into(),
        },
        Call::Start {
            user: "alice".into(),
            server: "nb1".into(),
            user_options: Some("{}".into()),
            display_name: Some("NB".into()),
            wait_ms: 10000,
        },
        Call::Stop {
            user: "alice".into(),
            server: "".into(),
            remove: true,
            wait_ms: 2000,
        },
        Call::Status {
            user: "alice".into(),
            server: "nb1".into(),
        },
        Call::Ping {
            version: 7,
            sent_unix_ms: 1000,
            proof_age_ms: 5,
            grant: false,
        },
        Call::WaitApplied { version: 8 },
    ]
}

fn answers() -> Vec<Answer> {
    let user = UserRecord {
        v: FORMAT,
        id: 7,
        name: "alice".into(),
        admin: true,
        created: 1,
        last_activity: None,
        cookie_id: "c1".into(),
    };
    let token = TokenRecord {
        v: FORMAT,
        id: 3,
        prefix: "abcd".into(),
        owner: Owner::User("alice".into()),
        scopes: vec!["inherit".into()],
        note: "n".into(),
        created: 1,
        last_activity: None,
        expires_at: Some(2),
        session_id: None,
        client_id: "jupyterhub".into(),
    };
    let summary = ServerSummary {
        phase: ServerPhase::Starting,
        last_failure: None,
        events: vec![ProgressEvent::step(50, "Spawning server...")],
    };
    vec![
        (Ok(Reply::User(user)), 1),
        (Ok(Reply::Done), 2),
        (Ok(Reply::Token(token, "secret".into())), 3),
        (Ok(Reply::Started(StartOutcome::Ready)), 4),
        (Ok(Reply::Started(StartOutcome::Failed("why".into()))), 5),
        (Ok(Reply::Started(StartOutcome::Pending)), 6),
        (Ok(Reply::Stopped(true)), 7),
        (Ok(Reply::Status(summary)), 8),
        (Err(WireError::NotFound("a".into())), 9),
        (Err(WireError::Exists("b".into())), 9),
        (Err(WireError::BadRequest("c".into())), 9),
        (Err(WireError::Forbidden("d".into())), 9),
        (Err(WireError::Unavailable("e".into())), 9),
        (Err(WireError::Moved("f".into())), 9),
        (Err(WireError::Internal("g".into())), 9),
    ]
}

#[test]
fn golden_routed_calls() {
    let calls = calls();
    assert_eq!(calls.len(), GOLDEN_ROUTED.len());
    for (call, golden) in calls.iter().zip(GOLDEN_ROUTED) {
        let bytes = Routed::encode(call, 3).unwrap();
        assert_eq!(hex(&bytes), *golden, "{call:?}");
        let back: Routed = crate::codec::decode(&bytes).unwrap();
        assert_eq!((back.call, back.epoch), (call.clone(), 3));
    }
}

#[test]
fn golden_new_token() {
    let bytes = encode(&spec()).unwrap();
    assert_eq!(hex(&bytes), GOLDEN_NEW_TOKEN);
    assert_eq!(crate::codec::decode::<NewToken>(&bytes).unwrap(), spec());
}

#[test]
fn golden_answers() {
    let answers = answers();
    assert_eq!(answers.len(), GOLDEN_ANSWERS.len());
    for (answer, golden) in answers.iter().zip(GOLDEN_ANSWERS) {
        let bytes = encode(answer).unwrap();
        assert_eq!(hex(&bytes), *golden, "{answer:?}");
        assert_eq!(crate::codec::decode::<Answer>(&bytes).unwrap(), *answer);
    }
}

#[test]
fn a_ping_from_before_grants_and_proof_ages_is_a_granting_ping_of_age_zero() {
    #[derive(Serialize)]
    enum OldCall {
        Ping { version: u64, sent_unix_ms: u64 },
    }
    let bytes = encode(&OldCall::Ping {
        version: 7,
        sent_unix_ms: 1000,
    })
    .unwrap();
    assert_eq!(
        crate::codec::decode::<Call>(&bytes).unwrap(),
        Call::Ping {
            version: 7,
            sent_unix_ms: 1000,
            proof_age_ms: 0,
            grant: true,
        }
    );
}

#[test]
fn the_user_of_a_call_and_its_wait() {
    let calls = calls();
    let users: Vec<Option<&str>> = calls.iter().map(Call::user).collect();
    assert_eq!(users[..9], [Some("alice"); 9]);
    assert_eq!(users[9..], [None, None]);
    assert_eq!(calls[6].wait_ms(), 10_000);
    assert_eq!(calls[7].wait_ms(), 2_000);
    assert_eq!(calls[8].wait_ms(), 0);
}

const GOLDEN_ROUTED: &[&str] = &[
    "82a463616c6c81aa4372656174655573657282a46e616d65a5616c696365a561646d696ec3a565706f636803",
    "82a463616c6c81a853657441646d696e82a46e616d65a5616c696365a561646d696ec2a565706f636803",
    "82a463616c6c81aa44656c6574655573657281a46e616d65a5616c696365a565706f636803",
    "82a463616c6c81ab437265617465546f6b656e82a46e616d65a5616c696365a47370656386a56f776e657281a455736572a5616c696365a673636f70657391aa726561643a7573657273a46e6f7465a16eaa657870697265735f696e3caa73657373696f6e5f6964c0a9636c69656e745f6964aa6a757079746572687562a565706f636803",
    "82a463616c6c81ab44656c657465546f6b656e82a46e616d65a5616c696365a269640ca565706f636803",
    "82a463616c6c81aa456e6453657373696f6e82a46e616d65a5616c696365aa73657373696f6e5f6964a27331a565706f636803",
    "82a463616c6c81a5537461727485a475736572a5616c696365a6736572766572a36e6231ac757365725f6f7074696f6e73a27b7dac646973706c61795f6e616d65a24e42a7776169745f6d73cd2710a565706f636803",
    "82a463616c6c81a453746f7084a475736572a5616c696365a6736572766572a0a672656d6f7665c3a7776169745f6d73cd07d0a565706f636803",
    "82a463616c6c81a653746174757382a475736572a5616c696365a6736572766572a36e6231a565706f636803",
    "82a463616c6c81a450696e6784a776657273696f6e07ac73656e745f756e69785f6d73cd03e8ac70726f6f665f6167655f6d7305a56772616e74c2a565706f636803",
    "82a463616c6c81ab576169744170706c69656481a776657273696f6e08a565706f636803",
];

const GOLDEN_NEW_TOKEN: &str =
    "86a56f776e657281a455736572a5616c696365a673636f70657391aa726561643a7573657273a46e6f7465a16eaa657870697265735f696e3caa73657373696f6e5f6964c0a9636c69656e745f6964aa6a757079746572687562";

const GOLDEN_ANSWERS: &[&str] = &[
    "9281a24f6b81a45573657287a17601a2696407a46e616d65a5616c696365a561646d696ec3a76372656174656401ad6c6173745f6163746976697479c0a9636f6f6b69655f6964a2633101",
    "9281a24f6ba4446f6e6502",
    "9281a24f6b81a5546f6b656e928ba17601a2696403a6707265666978a461626364a56f776e657281a455736572a5616c696365a673636f70657391a7696e6865726974a46e6f7465a16ea76372656174656401ad6c6173745f6163746976697479c0aa657870697265735f617402aa73657373696f6e5f6964c0a9636c69656e745f6964aa6a757079746572687562a673656372657403",
    "9281a24f6b81a753746172746564a5526561647904",
    "9281a24f6b81a75374617274656481a64661696c6564a377687905",
    "9281a24f6b81a753746172746564a750656e64696e6706",
    "9281a24f6b81a753746f70706564c307",
    "9281a24f6b81a653746174757383a57068617365a85374617274696e67ac6c6173745f6661696c757265c0a66576656e74739182a870726f677265737332a76d657373616765b2537061776e696e67207365727665722e2e2e08",
    "9281a345727281a84e6f74466f756e64a16109",
    "9281a345727281a6457869737473a16209",
    "9281a345727281aa42616452657175657374a16309",
    "9281a345727281a9466f7262696464656ea16409",
    "9281a345727281ab556e617661696c61626c65a16509",
    "9281a345727281a54d6f766564a16609",
    "9281a345727281a8496e7465726e616ca16709",
];
