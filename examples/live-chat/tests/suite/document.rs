//! The document's own examples, request by request: shapes, status codes and texts.

use crate::common;

use common::john;
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_session_answers_the_documented_shape_with_a_server_issued_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let created = s
        .send_as(
            hyper::Method::POST,
            "/api/live-chat/sessions",
            None,
            &[
                ("content-type", "application/json"),
                ("user-agent", "Mozilla/5.0 (test)"),
            ],
            john().to_string().into_bytes(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = &created.body;
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Chat session created successfully");
    let session = &body["data"]["session"];
    let sid = session["sessionId"].as_str().unwrap();
    assert!(sid.starts_with("session-"), "{sid}");
    assert!(
        sid.len() > 80,
        "without an id of its own the server issues one: {sid}"
    );
    assert!(
        created.headers.get("set-cookie").is_none(),
        "an issued id is its own credential"
    );
    assert!(body["data"].get("token").is_none());
    assert_eq!(session["user"]["name"], "John Doe");
    assert_eq!(session["user"]["email"], "john@example.com");
    assert_eq!(
        session["user"]["metadata"],
        json!({
            "userAgent": "Mozilla/5.0 (test)",
            "ipAddress": "127.0.0.1",
            "pageUrl": "https://example.com/pricing"
        })
    );
    assert_eq!(session["status"], "pending");
    assert_eq!(session["priority"], "medium");
    assert_eq!(session["department"], "general");
    assert_eq!(session["messageCount"], 1);
    assert_eq!(session["unreadCount"], 0);
    assert!(session["startedAt"].as_str().unwrap().ends_with('Z'));
    let welcome = &body["data"]["welcomeMessage"];
    assert_eq!(welcome["sessionId"], sid);
    assert_eq!(welcome["type"], "system");
    assert_eq!(
        welcome["content"],
        "Welcome John Doe! A support agent will be with you shortly."
    );
    assert_eq!(welcome["agentName"], "System");

    let missing = s
        .post(
            "/api/live-chat/sessions",
            None,
            json!({ "user": { "name": "John Doe" } }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body,
        json!({ "success": false, "message": "User name and email are required" })
    );
    s.stop().await;
}

#[tokio::test]
async fn the_guest_routes_follow_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let base = format!("/api/live-chat/sessions/{sid}");

    // A trailing slash names the same route; the document has no 405, so another method
    // is a route it does not have.
    let again = s.get(&format!("{base}/"), None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let other = s.call(hyper::Method::PUT, &base, None, None).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.body,
        json!({ "success": false, "message": "Route not found" })
    );

    let sent = s
        .post(
            &format!("{base}/messages"),
            None,
            json!({ "content": "Hello, I need help with my order" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["success"], true);
    assert_eq!(sent.body["message"], "Message sent successfully");
    let message = &sent.body["data"];
    assert_eq!(message["sessionId"], sid.as_str());
    assert_eq!(message["type"], "user");
    assert_eq!(message["content"], "Hello, I need help with my order");
    assert_eq!(message["attachments"], json!([]));
    assert_eq!(message["isRead"], false);
    assert!(message["_id"].is_string() && message["createdAt"].is_string());

    let empty = s.post(&format!("{base}/messages"), None, json!({})).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.body["message"], "Message content is required");

    let details = s.get(&base, None).await;
    assert_eq!(details.status, StatusCode::OK);
    assert_eq!(details.body["success"], true);
    assert_eq!(details.body["data"]["sessionId"], sid.as_str());
    assert_eq!(
        details.body["data"]["user"],
        json!({ "name": "John Doe", "email": "john@example.com", "phone": "+1234567890" })
    );
    assert_eq!(details.body["data"]["status"], "pending");
    assert_eq!(details.body["data"]["assignedAgent"], json!(null));
    assert_eq!(details.body["data"]["messageCount"], 2);

    // An agent answers: the guest's view names the agent.
    let reply = s
        .post(
            &format!("/api/admin/live-chat/sessions/{sid}/reply"),
            Some(&s.jane.token),
            json!({ "content": "Hi! How can I assist you today?" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let details = s.get(&base, None).await;
    assert_eq!(details.body["data"]["status"], "active");
    assert_eq!(
        details.body["data"]["assignedAgent"],
        json!({ "_id": s.jane.id, "firstName": "Jane", "lastName": "Smith" })
    );

    let page = s.get(&format!("{base}/messages"), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        (
            &page.body["success"],
            &page.body["page"],
            &page.body["pages"]
        ),
        (&json!(true), &json!(1), &json!(1))
    );
    let data = page.body["data"].as_array().unwrap();
    let kinds: Vec<_> = data.iter().map(|m| m["type"].as_str().unwrap()).collect();
    // Welcome, the question, the assignment notice, the answer.
    assert_eq!(kinds, ["system", "user", "system", "agent"], "{data:?}");
    assert_eq!(page.body["count"], 4);
    assert_eq!(page.body["total"], 4);
    assert_eq!(data[3]["agentName"], "Jane Smith");
    assert_eq!(data[1]["isRead"], false);
    let second = s
        .get(&format!("{base}/messages?page=2&limit=3"), None)
        .await;
    assert_eq!(
        (
            &second.body["count"],
            &second.body["total"],
            &second.body["page"],
            &second.body["pages"]
        ),
        (&json!(1), &json!(4), &json!(2), &json!(2))
    );
    assert_eq!(
        second.body["data"][0]["content"],
        "Hi! How can I assist you today?"
    );

    let typing = s
        .post(&format!("{base}/typing"), None, json!({ "isTyping": true }))
        .await;
    assert_eq!(
        typing.body,
        json!({ "success": true, "message": "Typing indicator sent" })
    );

    let bad_rating = s
        .patch(&format!("{base}/end"), None, json!({ "rating": 9 }))
        .await;
    assert_eq!(bad_rating.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_rating.body["message"], "Rating must be between 1 and 5");

    let ended = s
        .patch(
            &format!("{base}/end"),
            None,
            json!({ "rating": 5, "feedback": "Great support, very helpful!" }),
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert_eq!(ended.body["message"], "Chat session ended");
    assert_eq!(ended.body["data"]["sessionId"], sid.as_str());
    assert_eq!(ended.body["data"]["status"], "closed");
    assert!(ended.body["data"]["endedAt"].is_string());
    let again = s
        .call(hyper::Method::PATCH, &format!("{base}/end"), None, None)
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["message"], "Chat session already ended");

    let rated = s
        .post(
            &format!("{base}/rate"),
            None,
            json!({ "score": 4, "feedback": "Excellent service!" }),
        )
        .await;
    assert_eq!(rated.status, StatusCode::OK, "{}", rated.body);
    assert_eq!(rated.body["message"], "Thank you for your feedback!");
    assert_eq!(rated.body["data"]["rating"]["score"], 4);
    assert_eq!(
        rated.body["data"]["rating"]["feedback"],
        "Excellent service!"
    );
    assert!(rated.body["data"]["rating"]["ratedAt"].is_string());
    let no_score = s.post(&format!("{base}/rate"), None, json!({})).await;
    assert_eq!(no_score.status, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn the_admin_routes_follow_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let admin = Some(s.admin.token.as_str());
    let sid = s.session(john()).await;
    let other = s
        .session(json!({ "user": { "name": "Ann Lee", "email": "ann@example.com" } }))
        .await;
    s.post(
        &format!("/api/live-chat/sessions/{sid}/messages"),
        None,
        json!({ "content": "Hello, I need help" }),
    )
    .await;

    let list = s.get("/api/admin/live-chat/sessions", admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["success"], true);
    assert_eq!(
        (
            &list.body["count"],
            &list.body["total"],
            &list.body["page"],
            &list.body["pages"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(1))
    );
    assert_eq!(
        list.body["statusCounts"],
        json!({ "pending": 2, "active": 0, "closed": 0, "archived": 0 })
    );
    let first = &list.body["data"][0];
    assert_eq!(first["sessionId"], sid.as_str(), "newest activity first");
    assert_eq!(first["lastMessage"]["content"], "Hello, I need help");
    assert_eq!(first["lastMessage"]["type"], "user");
    assert_eq!(first["messageCount"], 2);
    assert_eq!(first["unreadCount"], 1);
    let searched = s
        .get("/api/admin/live-chat/sessions?search=ann@example", admin)
        .await;
    assert_eq!(searched.body["total"], 1);
    assert_eq!(searched.body["data"][0]["sessionId"], other.as_str());
    let by_id = s
        .get(
            &format!("/api/admin/live-chat/sessions?search={sid}"),
            admin,
        )
        .await;
    assert_eq!(by_id.body["data"][0]["sessionId"], sid.as_str());
    let unassigned = s
        .get(
            "/api/admin/live-chat/sessions?assignedAgent=unassigned&department=general&priority=medium&page=1&limit=1",
            admin,
        )
        .await;
    assert_eq!(
        (
            &unassigned.body["count"],
            &unassigned.body["total"],
            &unassigned.body["pages"]
        ),
        (&json!(1), &json!(2), &json!(2))
    );

    let base = format!("/api/admin/live-chat/sessions/{sid}");
    let assigned = s
        .patch(
            &format!("{base}/assign"),
            admin,
            json!({ "agentId": s.jane.id, "agentName": "Jane Smith" }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(
        assigned.body,
        json!({
            "success": true,
            "message": "Session assigned successfully",
            "data": { "sessionId": sid, "assignedAgent": s.jane.id, "agentName": "Jane Smith", "status": "active" }
        })
    );
    let unknown = s
        .patch(
            &format!("{base}/assign"),
            admin,
            json!({ "agentName": "Nobody" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["message"], "Agent ID is required");

    let reply = s
        .post(
            &format!("{base}/reply"),
            Some(&s.jane.token),
            json!({ "content": "Hello! I'd be happy to help you with that." }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["message"], "Reply sent successfully");
    assert_eq!(reply.body["data"]["type"], "agent");
    assert_eq!(reply.body["data"]["agentName"], "Jane Smith");
    assert_eq!(reply.body["data"]["agentId"], s.jane.id.as_str());
    assert_eq!(reply.body["data"]["sessionId"], sid.as_str());

    let note = s
        .post(
            &format!("{base}/notes"),
            Some(&s.jane.token),
            json!({ "content": "Customer mentioned they have a premium subscription" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.body);
    assert_eq!(note.body["message"], "Note added successfully");
    assert_eq!(
        note.body["data"]["content"],
        "Customer mentioned they have a premium subscription"
    );
    assert_eq!(note.body["data"]["addedBy"], s.jane.id.as_str());

    let updated = s
        .patch(
            &format!("{base}/status"),
            admin,
            json!({ "priority": "high", "department": "billing", "tags": ["refund", "urgent"] }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        updated.body,
        json!({
            "success": true,
            "message": "Session updated successfully",
            "data": { "sessionId": sid, "status": "active", "priority": "high", "department": "billing", "tags": ["refund", "urgent"] }
        })
    );
    let invalid = s
        .patch(
            &format!("{base}/status"),
            admin,
            json!({ "status": "gone" }),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);

    let transferred = s
        .post(
            &format!("{base}/transfer"),
            admin,
            json!({ "toAgentId": s.bob.id, "toAgentName": "Bob Wilson", "reason": "Billing expertise needed" }),
        )
        .await;
    assert_eq!(transferred.status, StatusCode::OK, "{}", transferred.body);
    assert_eq!(
        transferred.body,
        json!({
            "success": true,
            "message": "Session transferred successfully",
            "data": { "sessionId": sid, "assignedAgent": s.bob.id, "agentName": "Bob Wilson" }
        })
    );

    let details = s.get(&base, admin).await;
    assert_eq!(details.status, StatusCode::OK);
    let session = &details.body["data"]["session"];
    assert_eq!(session["status"], "active");
    assert_eq!(session["department"], "billing");
    assert_eq!(session["user"]["metadata"]["ipAddress"], "127.0.0.1");
    assert_eq!(
        session["assignedAgent"],
        json!({ "_id": s.bob.id, "firstName": "Bob", "lastName": "Wilson", "email": "bob@example.com" })
    );
    assert_eq!(
        session["notes"][0]["content"],
        "Customer mentioned they have a premium subscription"
    );
    assert_eq!(session["notes"][0]["addedBy"]["firstName"], "Jane");
    let messages = details.body["data"]["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .all(|m| m["content"] != "Customer mentioned they have a premium subscription")
    );
    // The transcript tells the guest it moved; the reason is for colleagues: a note.
    assert!(messages.iter().any(|m| {
        m["content"]
            .as_str()
            .unwrap()
            .starts_with("Transferred from")
    }));
    assert!(
        messages
            .iter()
            .all(|m| !m["content"].as_str().unwrap().contains("Billing expertise"))
    );
    assert!(
        session["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["content"] == "Transfer reason: Billing expertise needed"),
        "{}",
        details.text
    );

    // Closing through the status route, then the guest rates: analytics and history.
    let closed = s
        .patch(
            &format!("{base}/status"),
            admin,
            json!({ "status": "closed" }),
        )
        .await;
    assert_eq!(closed.body["data"]["status"], "closed", "{}", closed.body);
    s.post(
        &format!("/api/live-chat/sessions/{sid}/rate"),
        None,
        json!({ "score": 5, "feedback": "Great help!" }),
    )
    .await;
    let analytics = s.get("/api/admin/live-chat/analytics", admin).await;
    assert_eq!(analytics.status, StatusCode::OK, "{}", analytics.body);
    let data = &analytics.body["data"];
    assert_eq!(data["overview"]["totalSessions"], 2);
    assert_eq!(data["overview"]["closedSessions"], 1);
    assert_eq!(data["overview"]["avgRating"], 5.0);
    assert!(
        data["responseTime"]["avgResponseTime"].is_number(),
        "{data}"
    );
    assert_eq!(data["sessionsByDay"][0]["count"], 2);
    assert_eq!(data["topAgents"][0]["_id"], s.bob.id.as_str());
    assert_eq!(data["topAgents"][0]["sessionsHandled"], 1);
    let old = s
        .get(
            "/api/admin/live-chat/analytics?startDate=2024-11-01&endDate=2024-12-01T00:00:00.000Z",
            admin,
        )
        .await;
    assert_eq!(old.body["data"]["overview"]["totalSessions"], 0);
    assert_eq!(
        old.body["data"]["period"]["start"],
        "2024-11-01T00:00:00.000Z"
    );

    let again = s.session(john()).await;
    let history = s
        .get(
            "/api/admin/live-chat/customers/john%40example.com/history",
            admin,
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert_eq!(
        (
            &history.body["count"],
            &history.body["total"],
            &history.body["pages"]
        ),
        (&json!(2), &json!(2), &json!(1))
    );
    assert_eq!(history.body["data"][0]["sessionId"], again.as_str());
    assert_eq!(history.body["data"][1]["sessionId"], sid.as_str());
    assert_eq!(history.body["data"][1]["status"], "closed");
    assert_eq!(history.body["data"][1]["rating"], json!({ "score": 5 }));
    assert!(history.body["data"][1]["endedAt"].is_string());

    let deleted = s.call(hyper::Method::DELETE, &base, admin, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        deleted.body,
        json!({ "success": true, "message": "Session and all messages deleted successfully" })
    );
    let gone = s.get(&format!("/api/live-chat/sessions/{sid}"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!({ "success": false, "message": "Session not found" })
    );
    s.stop().await;
}

#[tokio::test]
async fn the_demo_chat_is_the_documents_example_and_is_seeded_once() {
    let dir = tempfile::tempdir().unwrap();
    let starter = example_live_chat::open(&dir.path().join("live-chat.db"))
        .await
        .unwrap();
    let chat = example_live_chat::live_chat(&starter, example_live_chat::Options::default())
        .await
        .unwrap();
    let first = chat.seed_demo(&starter.engine).await.unwrap();
    let again = chat.seed_demo(&starter.engine).await.unwrap();
    assert_eq!(first, again, "seeding twice keeps one chat");
    drop(starter);

    // The template on the same database serves it to the guest holding the id.
    let s = common::start(dir.path()).await;
    let messages = s
        .get(&format!("/api/live-chat/sessions/{first}/messages"), None)
        .await;
    assert_eq!(messages.status, StatusCode::OK, "{}", messages.body);
    let contents: Vec<_> = messages.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        contents,
        [
            "Welcome John Doe! A support agent will be with you shortly.",
            "Hello, I need help with my order"
        ]
    );
    s.stop().await;
}
