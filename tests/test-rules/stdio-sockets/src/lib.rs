//! Stdio and sockets: prints to stdout and stderr, tries a UDP and a TCP socket, and reports what the host answered in one note.
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct StdioSockets;

fn outcome<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "opened".into(),
        Err(e) => format!("refused ({:?})", e.kind()),
    }
}

impl Rule for StdioSockets {
    fn on_session_event(&self, event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        println!("stdout line for {}", event.id);
        eprintln!("stderr line for {}", event.id);
        let udp = outcome(std::net::UdpSocket::bind("0.0.0.0:0"));
        let tcp = outcome(std::net::TcpStream::connect("127.0.0.1:9"));
        Ok(Plan {
            actions: vec![Action::AddNote(format!("udp {udp}; tcp {tcp}"))],
        })
    }

    fn on_status_change(&self, change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        println!("status {}", change.status);
        StatusDecision::Ignore("stdio".into())
    }
}

register_rule!(StdioSockets);
