//! Reports for staff: what the store aggregates over a period, limited by the policy to
//! what the caller may see ([`Resolved::report_agent`](crate::policy::Resolved::report_agent)).

use super::Engine;
use crate::error::Result;
use crate::ids::AgentId;
use crate::policy::Actor;
use crate::report::{
    Dimension, Feedback, Interval, MAX_FEEDBACK, ReportPeriod, ReportQuery, ReportRow, SeriesPoint,
};

impl Engine {
    /// The query a report runs: the period's instants and whose figures the caller sees.
    async fn report_query(
        &self,
        actor: &Actor,
        period: &ReportPeriod,
        agent: Option<AgentId>,
    ) -> Result<ReportQuery> {
        let who = self.resolve(actor).await?;
        let agent = who.report_agent(agent)?;
        let (from, to) = period.instants()?;
        Ok(ReportQuery {
            tenant: actor.tenant(),
            from,
            to,
            agent,
        })
    }

    /// Whose figures a report for `actor` asking for `agent` shows: `None` for the whole
    /// tenant. See [`Resolved::report_agent`](crate::policy::Resolved::report_agent).
    pub async fn report_agent(
        &self,
        actor: &Actor,
        agent: Option<AgentId>,
    ) -> Result<Option<AgentId>> {
        self.resolve(actor).await?.report_agent(agent)
    }

    /// The figures of a period, broken down `by` a dimension (one row per key) or, without
    /// one, the totals (one row, key `None`). `agent` narrows to one agent's conversations;
    /// an agent caller always gets its own.
    pub async fn report(
        &self,
        actor: &Actor,
        period: &ReportPeriod,
        agent: Option<AgentId>,
        by: Option<Dimension>,
    ) -> Result<Vec<ReportRow>> {
        let query = self.report_query(actor, period, agent).await?;
        let mut rows = self.inner.store.report_rows(&query, by).await?;
        if by.is_none() && rows.is_empty() {
            rows.push(ReportRow::default());
        }
        Ok(rows)
    }

    /// Opened, closed and reopened conversations per local hour or day of the period, the
    /// points' starts in the caller's time zone.
    pub async fn report_series(
        &self,
        actor: &Actor,
        period: &ReportPeriod,
        agent: Option<AgentId>,
        interval: Interval,
    ) -> Result<Vec<SeriesPoint>> {
        let bounds = period.bounds(interval)?;
        let query = self.report_query(actor, period, agent).await?;
        let mut points = self.inner.store.report_series(&query, &bounds).await?;
        for point in &mut points {
            point.start = period.local(point.start);
        }
        Ok(points)
    }

    /// The ratings with a text given in the period, newest first, at most `limit`
    /// (clamped to [`MAX_FEEDBACK`]).
    pub async fn report_feedback(
        &self,
        actor: &Actor,
        period: &ReportPeriod,
        agent: Option<AgentId>,
        limit: usize,
    ) -> Result<Vec<Feedback>> {
        let query = self.report_query(actor, period, agent).await?;
        let mut feedback = self
            .inner
            .store
            .report_feedback(&query, limit.clamp(1, MAX_FEEDBACK))
            .await?;
        for f in &mut feedback {
            f.rated_at = period.local(f.rated_at);
        }
        Ok(feedback)
    }
}
