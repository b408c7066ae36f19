//! Task binding for the tasks extension: a task id is a capability, bound
//! to the principal whose request created it.
//!
//! The tasks of MCP (`2025-11-25`'s experimental tasks, and the
//! `io.modelcontextprotocol/tasks` extension of `2026-07-28`) let a server
//! answer `tools/call` with a `CreateTaskResult` and the client poll it
//! later by `taskId`. Whoever holds a task id can read its result, update
//! or cancel it, so the layer binds each id to its creator, like sessions.

use serde_json::Value;

use super::json::NotForwarded;
use super::jsonrpc::{Message, Refusal};
use super::ownership::{IdKind, Owners, Principal, binding};
use crate::error::AuthError;
use crate::store::SharedStore;

/// Remembers which principal created each task, and refuses the task to
/// everyone else.
///
/// - A task is bound when the server answers a task-capable `tools/call`
///   (one carrying `params.task` on `2025-11-25`, or naming the tasks
///   extension in its `_meta` client capabilities on `2026-07-28`: a
///   server creates tasks for no other) with a `CreateTaskResult`
///   (`result.task.taskId`, or `result.resultType: "task"` with
///   `result.taskId`), in JSON or in an SSE stream. Those answers are read
///   whole (up to 8 MiB; a larger one gets `502`) before they are passed
///   on; every other answer streams as it comes.
/// - `tasks/get`, `tasks/result`, `tasks/update` and `tasks/cancel` name
///   one task (`params.taskId`, which they must carry); `subscriptions/listen`
///   may name several (`params.notifications.taskIds`). A task that is not
///   the caller's (another principal's, one never seen issued, or a
///   forgotten one) gets `403` with a JSON-RPC error, the same answer
///   either way, so whether a task id exists is not disclosed.
/// - `tasks/list` answers are filtered to the caller's tasks.
/// - Bounded in bytes (16 MiB by default) and by idle time (24 hours by
///   default: [`with_limits`](Self::with_limits) should keep it at least
///   the longest task time-to-live the server grants); with the guard's
///   [shared store](crate::GuardBuilder::shared_store)
///   bindings are written there too, as for [sessions](super::SessionBinding).
///
/// A task id never stands in for a token: every request is verified and
/// judged by the policy as well.
#[derive(Clone)]
pub struct TaskBinding {
    pub(super) owners: Owners,
}

binding!(TaskBinding, IdKind::Task, "tasks");

impl TaskBinding {
    /// Checks that `principal` created every task `messages` act on.
    pub(crate) async fn check(
        &self,
        messages: &[Message],
        principal: &Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), NotForwarded> {
        for m in messages {
            for id in tasks_of(m)? {
                self.owners.check(id, principal, shared).await?;
            }
        }
        Ok(())
    }

    /// Binds the tasks an answer created to `principal`.
    pub(crate) async fn bind_created(
        &self,
        reply: &Value,
        principal: &Principal,
        shared: Option<&SharedStore>,
    ) -> Result<(), AuthError> {
        match created_task(reply) {
            Some(id) => self.owners.bind(id, principal.clone(), shared).await,
            None => Ok(()),
        }
    }

    /// Keeps, in a `tasks/list` answer, only the tasks `principal` created;
    /// `false` when `reply` is not one. Asks the shared store first about
    /// tasks this process does not know.
    pub(crate) async fn filter_list(
        &self,
        reply: &mut Value,
        principal: &Principal,
        shared: Option<&SharedStore>,
    ) -> bool {
        let Some(Value::Array(tasks)) = reply.pointer_mut("/result/tasks") else {
            return false;
        };
        for task in std::mem::take(tasks) {
            let id = task.get("taskId").and_then(Value::as_str);
            // A task that cannot be attributed, or whose owner cannot be
            // read now, is left out.
            let owned = match id {
                Some(id) => self.owners.check(id, principal, shared).await.is_ok(),
                None => false,
            };
            if owned {
                tasks.push(task);
            }
        }
        true
    }
}

/// The methods that act on one task named by `params.taskId`.
fn names_one_task(method: &str) -> bool {
    matches!(
        method,
        "tasks/get" | "tasks/result" | "tasks/update" | "tasks/cancel"
    )
}

/// The task ids `m` acts on, or why it cannot be judged.
fn tasks_of(m: &Message) -> Result<&[String], Refusal> {
    match m.method.as_deref() {
        Some(method) if names_one_task(method) => match &m.task_id {
            Some(id) => Ok(std::slice::from_ref(id)),
            None => Err(Refusal::params(
                "a task request names no task (params.taskId)",
            )),
        },
        Some("subscriptions/listen") => Ok(&m.listen_task_ids),
        _ => Ok(&[]),
    }
}

/// The id of the task a JSON-RPC answer created, if it is a
/// `CreateTaskResult`.
fn created_task(reply: &Value) -> Option<&str> {
    let result = reply.get("result")?;
    // 2026-07-28 (the tasks extension): the task's fields in the result.
    if result.get("resultType").and_then(Value::as_str) == Some("task") {
        return result.get("taskId").and_then(Value::as_str);
    }
    // 2025-11-25: `{"task": {"taskId": …}}`.
    result.pointer("/task/taskId").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn created_tasks_on_both_wires() {
        assert_eq!(
            created_task(
                &json!({"jsonrpc":"2.0","id":1,"result":{"resultType":"task","taskId":"t1","status":"working"}})
            ),
            Some("t1")
        );
        assert_eq!(
            created_task(
                &json!({"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t2","status":"working"}}})
            ),
            Some("t2")
        );
        for not in [
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[],"taskId":"t3"}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","task":"x"}}),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}),
        ] {
            assert_eq!(created_task(&not), None, "{not}");
        }
    }

    #[test]
    fn task_requests_must_name_their_task() {
        let m = |method: &str, id: Option<&str>| Message {
            method: Some(method.into()),
            task_id: id.map(Into::into),
            ..Message::default()
        };
        for method in ["tasks/get", "tasks/result", "tasks/update", "tasks/cancel"] {
            assert_eq!(tasks_of(&m(method, Some("t"))).unwrap(), ["t".to_owned()]);
            assert!(tasks_of(&m(method, None)).is_err(), "{method}");
        }
        assert!(tasks_of(&m("tools/call", None)).unwrap().is_empty());
        let listen = Message {
            listen_task_ids: vec!["a".into(), "b".into()],
            ..m("subscriptions/listen", None)
        };
        assert_eq!(tasks_of(&listen).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn lists_keep_the_callers_tasks() {
        let alice = Principal::of(None);
        let t = TaskBinding::new();
        t.bind_created(&json!({"result":{"task":{"taskId":"mine"}}}), &alice, None)
            .await
            .unwrap();
        let mut reply = json!({"jsonrpc":"2.0","id":1,"result":{"tasks":[
            {"taskId":"mine"},{"taskId":"theirs"},{"status":"working"}
        ]}});
        assert!(t.filter_list(&mut reply, &alice, None).await);
        assert_eq!(reply["result"]["tasks"], json!([{"taskId":"mine"}]));
        assert!(!t.filter_list(&mut json!({"result":{}}), &alice, None).await);
    }
}
