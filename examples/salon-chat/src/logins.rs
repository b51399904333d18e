//! Staff and customer logins: the OAuth2 password form and the phone-number login.

use chat_server::Context;
use chat_server::accounts;
use chat_server::http;
use chat_starter::fastapi;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::answers::{Answer, engine_error, json_body, ok};
use crate::salons::SalonChat;
use crate::{CUSTOMER_NUMBER, MAX_BODY, normalize_phone};

impl SalonChat {
    /// `POST /api/v1/auth/login`: the OAuth2 password form, `username` being the e-mail.
    pub(crate) async fn staff_login(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let bytes = http::collect(req.into_body(), MAX_BODY)
            .await
            .map_err(|e| fastapi::detail(e.status, &e.message))?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            let missing = ["username", "password"]
                .into_iter()
                .filter(|f| field(f).is_none())
                .map(|f| {
                    json!({ "type": "missing", "loc": ["body", f], "msg": "Field required", "input": null })
                })
                .collect();
            return Err(fastapi::invalid(missing));
        };
        // Staff e-mails are unique within a salon; the first salon that knows the
        // e-mail and password wins.
        for salon in self.salons() {
            if let Some((_, token)) =
                accounts::staff_login(cx.engine(), cx.config(), salon.tenant, &username, &password)
                    .await
                    .map_err(|_| {
                        fastapi::detail(StatusCode::INTERNAL_SERVER_ERROR, "Login failed")
                    })?
            {
                return Ok(ok(
                    StatusCode::OK,
                    json!({ "access_token": token, "token_type": "bearer", "salon_id": salon.number }),
                ));
            }
        }
        Err(fastapi::unauthorized("Incorrect email or password"))
    }

    /// `POST /api/v1/customer-auth/login`: `{phone_number, password}` and, when the
    /// phone number is a customer of several salons, `salon_id`.
    pub(crate) async fn customer_login(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let body = json_body(req).await?;
        let fields = fastapi::strings(&body, &["phone_number", "password"])?;
        let (phone, password) = (normalize_phone(&fields[0]), &fields[1]);
        let wanted = body.get("salon_id").and_then(Value::as_u64);
        let mut found = Vec::new();
        for salon in self.salons() {
            if wanted.is_some_and(|n| n != salon.number) {
                continue;
            }
            if let Some((_, contact, token)) =
                accounts::login(cx.engine(), cx.config(), salon.tenant, &phone, password)
                    .await
                    .map_err(engine_error)?
            {
                found.push((salon, contact, token));
            }
        }
        match found.len() {
            0 => Err(fastapi::unauthorized("Incorrect phone number or password")),
            1 => {
                let (salon, contact, token) = found.remove(0);
                Ok(ok(
                    StatusCode::OK,
                    json!({
                        "access_token": token,
                        "token_type": "bearer",
                        "customer": {
                            "id": contact.metadata.get(CUSTOMER_NUMBER).and_then(|n| n.parse::<u64>().ok()),
                            "name": contact.name,
                            "phone_number": contact.phone,
                            "salon_id": salon.number,
                        },
                    }),
                ))
            }
            _ => Err(fastapi::detail(
                StatusCode::CONFLICT,
                "This phone number is registered at several salons: send salon_id",
            )),
        }
    }
}
