//! A request's exchange run by the task that sent it: what of its reply
//! goes straight to that task.

use mcp_conn_core::jsonrpc::{Message, RequestId};

/// A request's exchange run by the task that sent it
/// ([`mcp_conn_core::LinkTx::try_exchange_now`]): its response is kept here
/// for that task, instead of going through the link's receive half, when
/// nothing of the reply went there before it.
pub(crate) struct Direct {
    id: RequestId,
    /// Something of this reply went to the receive half: the response
    /// follows it there, in order.
    pushed: bool,
    /// The response, kept for the caller.
    pub(crate) response: Option<mcp_conn_core::jsonrpc::Response>,
    /// The rest of an SSE reply after the response, still to be read to its
    /// end (see `Shared::finish_reply` in `link.rs`).
    pub(crate) tail: Option<crate::stream::EventStream>,
}

impl Direct {
    pub(crate) fn new(id: RequestId) -> Self {
        Direct {
            id,
            pushed: false,
            response: None,
            tail: None,
        }
    }

    /// Keeps `msg` if it is the response, first of the reply; else gives it
    /// back, for the receive half.
    pub(crate) fn offer(&mut self, msg: Message) -> Option<Message> {
        match msg {
            Message::Response(r)
                if !self.pushed && self.response.is_none() && r.id.as_ref() == Some(&self.id) =>
            {
                self.response = Some(r);
                None
            }
            msg => {
                self.pushed = true;
                Some(msg)
            }
        }
    }
}
