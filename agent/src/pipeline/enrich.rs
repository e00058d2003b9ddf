//! Background work on an entry: enrich (one structured model call), embed and
//! index, unindex. Each is idempotent: it acts on the version it was queued
//! for, and a stale or deleted entry makes it a no-op.

use chrono::Utc;
use serde_json::{Value, json};

use crate::agent::Agent;
use crate::domain::*;
use crate::models::{ChatMessage, ChatRequest, ModelError, OutputSchema, Task};
use crate::store::{Job, JobKind, PayloadUpdate, StoreError, VectorRecord};
use crate::trace::{RunType, Span};

/// Why a job attempt failed. `retry()` says what the worker does about it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's code panicked; the worker survives and counts an attempt.
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// The job ran past its time limit and was stopped.
    #[error("the job ran longer than {0:?}")]
    TimedOut(std::time::Duration),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] crate::vector::IndexError),
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    /// Nothing can be done until something is configured; retried later without spending attempts.
    #[error("waiting: {0}")]
    Waiting(String),
    /// A sealed capsule that cannot be opened (damaged, or another key).
    #[error(transparent)]
    Sealed(#[from] crate::capsule::SealError),
}

/// What a failed attempt means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Something else is down (connection, timeout, 5xx, 429): retry with
    /// capped backoff for as long as it takes, without spending an attempt.
    Transient,
    /// The attempt itself went wrong (a malformed answer, a panic, a timeout):
    /// retry with backoff, and give up after the job's attempts.
    Counted,
    /// Retrying cannot help (the model refused the request, the media is gone): fail now.
    Permanent,
}

impl JobError {
    pub fn retry(&self) -> Retry {
        use crate::blob::BlobError;
        use crate::channel::ChannelError;
        use crate::vector::IndexError;
        match self {
            JobError::Model(ModelError::Unavailable(_) | ModelError::RateLimited) => Retry::Transient,
            JobError::Model(ModelError::Rejected(_)) => Retry::Permanent,
            JobError::Model(ModelError::BadResponse(_) | ModelError::NotConfigured(_)) => Retry::Counted,
            JobError::Store(StoreError::Unavailable(_)) => Retry::Transient,
            JobError::Store(_) => Retry::Counted,
            JobError::Index(IndexError::Unavailable(_)) => Retry::Transient,
            JobError::Index(IndexError::Dimensions { .. }) => Retry::Permanent,
            JobError::Index(_) => Retry::Counted,
            JobError::Blob(BlobError::Unavailable(_)) => Retry::Transient,
            JobError::Blob(BlobError::NotFound) => Retry::Permanent,
            JobError::Blob(_) => Retry::Counted,
            JobError::Channel(ChannelError::Unavailable(_)) => Retry::Transient,
            JobError::Channel(ChannelError::TooLarge | ChannelError::NotFound(_)) => Retry::Permanent,
            JobError::Panicked(_) | JobError::TimedOut(_) => Retry::Counted,
            JobError::Waiting(_) => Retry::Transient,
            JobError::Sealed(_) => Retry::Permanent,
        }
    }
}

fn enrich_schema() -> OutputSchema {
    let list = json!({ "type": "array", "items": { "type": "string" } });
    OutputSchema {
        name: "entry_insights",
        schema: json!({
            "type": "object",
            "properties": { "summary": { "type": "string" }, "topics": list, "emotions": list, "members": list },
            "required": ["summary", "topics", "emotions", "members"],
            "additionalProperties": false,
        }),
    }
}

/// The model's insight output, validated.
#[derive(Debug, PartialEq)]
pub(crate) struct EnrichOutput {
    pub summary: String,
    pub topics: Vec<String>,
    pub emotions: Vec<String>,
    pub members: Vec<String>,
}

fn string_list(v: &Value, key: &str, max: usize) -> Result<Vec<String>, ModelError> {
    let items = v.get(key).and_then(Value::as_array).ok_or_else(|| ModelError::BadResponse(format!("`{key}` is not a list")))?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let s = item.as_str().ok_or_else(|| ModelError::BadResponse(format!("`{key}` has a non-string item")))?;
        let s = s.replace('\0', "").trim().to_lowercase();
        if !s.is_empty() && s.chars().count() <= 40 && !out.contains(&s) {
            out.push(s);
        }
    }
    out.truncate(max);
    Ok(out)
}

pub(crate) fn parse_enrich(content: &str) -> Result<EnrichOutput, ModelError> {
    let v = super::parse_json(content)?;
    let summary = v
        .get("summary")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ModelError::BadResponse("`summary` missing or empty".into()))?;
    let members = v
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| ModelError::BadResponse("`members` is not a list".into()))?
        .iter()
        .filter_map(|m| m.as_str().map(|s| s.trim().to_string()))
        .collect();
    Ok(EnrichOutput {
        summary: crate::text::model_snippet(summary, 500),
        topics: string_list(&v, "topics", 6)?,
        emotions: string_list(&v, "emotions", 4)?,
        members,
    })
}

impl Agent {
    /// Runs one claimed job as its own trace.
    pub async fn run_job(&self, job: &Job) -> Result<(), JobError> {
        if matches!(job.kind, JobKind::Embed | JobKind::Enrich) {
            // Embedding and enrichment always go the batch way (here a batch of one).
            return match self.run_batch(std::slice::from_ref(job)).await.pop() {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(std::sync::Arc::try_unwrap(e).unwrap_or_else(|shared| JobError::Panicked(shared.to_string()))),
                None => Err(JobError::Panicked("no outcome".into())),
            };
        }
        let mut root = self.b.tracer.root(job.kind.as_str(), RunType::Chain, json!({ "entry_id": job.entry_id, "version": job.entry_version }));
        root.metadata("entry_id", json!(job.entry_id));
        root.metadata("attempt", json!(job.attempts));
        root.tag("job");
        let result = match job.kind {
            JobKind::Embed | JobKind::Enrich => unreachable!("batched kinds are run above"),
            JobKind::Unindex => self.b.index.delete(job.family_id, job.entry_id).await.map_err(JobError::from).map(|_| "unindexed"),
            JobKind::FetchMedia => self.fetch_media(job, &root).await,
            JobKind::Transcribe => self.transcribe(job, &root).await,
            JobKind::OpenCapsule => self.open_capsule_job(job, &root).await,
            JobKind::Describe => self.describe_photos(job, &root).await,
        };
        match &result {
            Ok(outcome) => root.end(json!({ "outcome": outcome })),
            Err(e) => root.fail(&e.to_string()),
        }
        result.map(|_| ())
    }

    /// Asks the model for one entry's insight (its own traced run under
    /// `parent`) and resolves the children it names to the family's.
    async fn enrich_one(&self, family_id: FamilyId, entry: &Entry, members: &[Member], parent: &Span) -> Result<Insight, JobError> {
        let mut run = parent.child("enrich_entry", RunType::Chain, json!({ "entry_id": entry.id, "version": entry.version }));
        run.metadata("entry_id", json!(entry.id));
        let result = self.enrich_in(family_id, entry, members, &run).await;
        match &result {
            Ok(insight) => run.end(json!({ "topics": insight.topics, "emotions": insight.emotions, "members": insight.member_ids })),
            Err(e) => run.fail(&e.to_string()),
        }
        result
    }

    async fn enrich_in(&self, family_id: FamilyId, entry: &Entry, members: &[Member], root: &Span) -> Result<Insight, JobError> {
        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        let prompt = &self.prompts.enrich;
        let listed = members
            .iter()
            .map(|m| if m.aliases.is_empty() { m.name.clone() } else { format!("{} (also {})", m.name, m.aliases.join(", ")) })
            .collect::<Vec<_>>()
            .join("; ");
        let rendered = {
            let span = root.child("enrich_prompt", RunType::Prompt, json!({ "name": prompt.name, "version": prompt.version }));
            let listed = if listed.is_empty() { "(none)".to_string() } else { listed };
            let r = prompt.render(&[("members", &listed), ("text", &entry.raw_text)]).expect("enrich placeholders are tested");
            span.end(json!({ "system": r.0, "user": r.1 }));
            r
        };
        let request = ChatRequest {
            task: Task::Enrich { text: entry.raw_text.clone(), member_names: names },
            messages: vec![ChatMessage::system(rendered.0), ChatMessage::user(rendered.1)],
            schema: Some(enrich_schema()),
            temperature: 0.0,
            deltas: None,
        };
        let done = self.call_chat(family_id, root, "enrich", &request).await?;
        let parser = root.child("parse_insights", RunType::Parser, json!({ "content": done.content }));
        let out = match parse_enrich(&done.content) {
            Ok(out) => {
                parser.end(json!({ "topics": out.topics, "emotions": out.emotions, "members": out.members }));
                out
            }
            Err(e) => {
                parser.fail(&e.to_string());
                return Err(e.into());
            }
        };
        // The model names children; we keep the ones we know, plus those detected at record time.
        let mut member_ids = entry.member_ids.clone();
        for name in &out.members {
            if let Some(m) = members.iter().find(|m| m.names().any(|n| n.eq_ignore_ascii_case(name)))
                && !member_ids.contains(&m.id)
            {
                member_ids.push(m.id);
            }
        }
        Ok(Insight {
            entry_id: entry.id,
            entry_version: entry.version,
            summary: out.summary,
            topics: out.topics,
            emotions: out.emotions,
            member_ids,
            model: done.model,
            prompt_name: prompt.name.clone(),
            prompt_version: prompt.version.clone(),
            created_at: Utc::now(),
        })
    }
}

/// One job's outcome in a batch: several jobs may share one error (the
/// embeddings call or a family's write failed for all of them).
pub type BatchOutcome = Result<&'static str, std::sync::Arc<JobError>>;

/// The families of a batch's jobs, each once, in order of first appearance.
fn families_of(jobs: &[Job]) -> Vec<FamilyId> {
    let mut families: Vec<FamilyId> = Vec::new();
    for j in jobs {
        if !families.contains(&j.family_id) {
            families.push(j.family_id);
        }
    }
    families
}

/// Gives the jobs at `which` one shared error as their outcome.
fn fail_all(outcomes: &mut [Option<BatchOutcome>], which: &[usize], e: JobError) {
    let e = std::sync::Arc::new(e);
    for &i in which {
        outcomes[i] = Some(Err(e.clone()));
    }
}

/// Model calls one enrichment batch has in flight at once.
const ENRICH_CALLS_AT_ONCE: usize = 4;

impl Agent {
    /// A batch's trace: the entries it holds, and for a batch of one its entry and attempt.
    fn batch_root(&self, name: &str, jobs: &[Job]) -> Span {
        let mut root = self.b.tracer.root(
            name,
            RunType::Chain,
            json!({ "entries": jobs.iter().map(|j| json!({ "entry_id": j.entry_id, "version": j.entry_version })).collect::<Vec<_>>() }),
        );
        if let [job] = jobs {
            root.metadata("entry_id", json!(job.entry_id));
            root.metadata("attempt", json!(job.attempts));
        }
        root.metadata("entry_ids", json!(jobs.iter().map(|j| j.entry_id).collect::<Vec<_>>()));
        root.metadata("batch", json!(jobs.len()));
        root.tag("job");
        root
    }

    /// Runs a batch of claimed jobs of one batched kind (`Embed` or `Enrich`)
    /// as one trace; each job's outcome, in order.
    pub async fn run_batch(&self, jobs: &[Job]) -> Vec<BatchOutcome> {
        match jobs.first().map(|j| j.kind) {
            None => Vec::new(),
            Some(JobKind::Embed) if jobs.iter().all(|j| j.kind == JobKind::Embed) => self.run_embed_batch(jobs).await,
            Some(JobKind::Enrich) if jobs.iter().all(|j| j.kind == JobKind::Enrich) => self.run_enrich_batch(jobs).await,
            Some(_) => {
                let e = std::sync::Arc::new(JobError::Panicked("a batch must hold embed jobs or enrich jobs only".into()));
                jobs.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// Enriches a batch of claimed `Enrich` jobs as one trace: per family one
    /// read of the entries and one of the children, the model calls (a few
    /// at once, each its own run), then per family one write of the insights
    /// and one of the index payloads.
    pub async fn run_enrich_batch(&self, jobs: &[Job]) -> Vec<BatchOutcome> {
        use futures_util::StreamExt;
        use std::sync::Arc;
        let root = self.batch_root("enrich", jobs);
        let mut outcomes: Vec<Option<BatchOutcome>> = vec![None; jobs.len()];
        let families = families_of(jobs);

        // The entries as queued (a deleted or edited one makes its job a no-op) and each family's children.
        let mut live: Vec<(usize, Entry, Arc<Vec<Member>>)> = Vec::new();
        for &family in &families {
            let mine: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].family_id == family).collect();
            let ids: Vec<EntryId> = mine.iter().map(|&i| jobs[i].entry_id).collect();
            let entries = match self.b.store.get_entries(family, &ids).await {
                Ok(entries) => entries,
                Err(e) => {
                    fail_all(&mut outcomes, &mine, e.into());
                    continue;
                }
            };
            let members = match self.b.store.list_members(family).await {
                Ok(members) => Arc::new(members),
                Err(e) => {
                    fail_all(&mut outcomes, &mine, e.into());
                    continue;
                }
            };
            for &i in &mine {
                match entries.iter().find(|e| e.id == jobs[i].entry_id && e.version == jobs[i].entry_version && e.family_id == family) {
                    Some(e) => live.push((i, e.clone(), members.clone())),
                    None => outcomes[i] = Some(Ok("stale")),
                }
            }
        }

        // The model calls, a few at once.
        let root_ref = &root;
        let mut calls = Vec::with_capacity(live.len());
        for (i, entry, members) in &live {
            let call = self.enrich_one(entry.family_id, entry, members, root_ref);
            calls.push(async move { (*i, call.await) });
        }
        let enriched: Vec<(usize, Result<Insight, JobError>)> = futures_util::stream::iter(calls).buffered(ENRICH_CALLS_AT_ONCE).collect().await;
        let mut insights: Vec<(usize, Insight)> = Vec::new();
        for (i, result) in enriched {
            match result {
                Ok(insight) => insights.push((i, insight)),
                Err(e) => fail_all(&mut outcomes, &[i], e),
            }
        }

        // Per family: the insights in one write, then the index's payloads in one.
        for &family in &families {
            let mine: Vec<&(usize, Insight)> = insights.iter().filter(|(i, _)| jobs[*i].family_id == family).collect();
            if mine.is_empty() {
                continue;
            }
            let which: Vec<usize> = mine.iter().map(|(i, _)| *i).collect();
            let batch: Vec<Insight> = mine.iter().map(|(_, x)| x.clone()).collect();
            let written = match self.b.store.put_insights(family, &batch).await {
                Ok(written) => written,
                Err(e) => {
                    fail_all(&mut outcomes, &which, e.into());
                    continue;
                }
            };
            let updates: Vec<PayloadUpdate> = batch
                .iter()
                .filter(|x| written.contains(&x.entry_id))
                .map(|x| PayloadUpdate { entry_id: x.entry_id, member_ids: x.member_ids.clone(), topics: x.topics.clone(), emotions: x.emotions.clone() })
                .collect();
            // An insight refused as stale: the entry changed meanwhile and its new version has its own job.
            let payloads = self.b.index.set_payloads(family, &updates).await.map_err(|e| Arc::new(JobError::from(e)));
            for (i, x) in &mine {
                outcomes[*i] = Some(match (&payloads, written.contains(&x.entry_id)) {
                    (_, false) => Ok("stale"),
                    (Ok(()), true) => Ok("enriched"),
                    (Err(e), true) => Err(e.clone()),
                });
            }
        }
        let outcomes: Vec<BatchOutcome> = outcomes.into_iter().map(|o| o.unwrap_or(Ok("stale"))).collect();
        let enriched = outcomes.iter().filter(|o| matches!(o, Ok("enriched"))).count();
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        if failed == jobs.len() && !jobs.is_empty() {
            if let Some(Err(e)) = outcomes.first() {
                root.fail(&e.to_string());
            }
        } else {
            root.end(json!({ "enriched": enriched, "failed": failed, "stale": jobs.len() - enriched - failed }));
        }
        outcomes
    }

    /// Embeds and indexes a batch of claimed `Embed` jobs as one trace: one
    /// embeddings call for all their pieces, then per family one vector write
    /// and one indexed-mark transaction. Returns each job's outcome, in order.
    pub async fn run_embed_batch(&self, jobs: &[Job]) -> Vec<BatchOutcome> {
        use std::sync::Arc;
        let root = self.batch_root("embed", jobs);
        let mut outcomes: Vec<Option<BatchOutcome>> = vec![None; jobs.len()];

        // The entries, read per family; a deleted or edited one makes its job a no-op.
        let families = families_of(jobs);
        let mut live: Vec<(usize, Entry)> = Vec::new();
        for &family in &families {
            let mine: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].family_id == family).collect();
            let ids: Vec<EntryId> = mine.iter().map(|&i| jobs[i].entry_id).collect();
            match self.b.store.get_entries(family, &ids).await {
                Ok(entries) => {
                    for &i in &mine {
                        match entries.iter().find(|e| e.id == jobs[i].entry_id && e.version == jobs[i].entry_version && e.family_id == family) {
                            Some(e) => live.push((i, e.clone())),
                            None => outcomes[i] = Some(Ok("stale")),
                        }
                    }
                }
                Err(e) => fail_all(&mut outcomes, &mine, e.into()),
            }
        }

        // Every live entry's pieces in one call (a long entry goes in pieces the model takes whole).
        let prefix = &self.settings.embed_passage_prefix;
        let budget = if prefix.is_empty() { self.settings.embed_max_tokens } else { self.settings.embed_max_tokens.saturating_sub(16).max(8) };
        let mut texts = Vec::new();
        let mut spans = Vec::with_capacity(live.len());
        let mut weights = Vec::with_capacity(live.len());
        // An entry's text is what the parent wrote plus what a vision model saw in its photos.
        // Read per family in one query each (so are the insights below): under
        // load every query waits for a pooled connection, so a batch makes few.
        let mut descriptions: Vec<(EntryId, String)> = Vec::new();
        let mut insights: Vec<Insight> = Vec::new();
        for &family in &families {
            let ids: Vec<EntryId> = live.iter().filter(|(_, e)| e.family_id == family).map(|(_, e)| e.id).collect();
            match self.b.store.media_descriptions(family, &ids).await {
                Ok(found) => descriptions.extend(found),
                Err(e) => tracing::warn!(error = %e, "could not read photo descriptions; indexing the text alone"),
            }
            match self.b.store.get_insights(family, &ids).await {
                Ok(found) => insights.extend(found),
                Err(e) => {
                    let which: Vec<usize> = live.iter().filter(|(_, e)| e.family_id == family).map(|(i, _)| *i).collect();
                    fail_all(&mut outcomes, &which, e.into());
                }
            }
        }
        let mut indexed_text: Vec<String> = Vec::with_capacity(live.len());
        for (_, entry) in &live {
            let described: Vec<&str> = descriptions.iter().filter(|(id, _)| *id == entry.id).map(|(_, d)| d.as_str()).collect();
            indexed_text.push(if described.is_empty() { entry.raw_text.clone() } else { format!("{}\n{}", entry.raw_text, described.join("\n")).trim().to_string() });
        }
        // (A family whose insights could not be read has its outcome already.)
        let (live, indexed_text): (Vec<(usize, Entry)>, Vec<String>) = live.into_iter().zip(indexed_text).filter(|((i, _), _)| outcomes[*i].is_none()).unzip();
        for ((_, entry), text) in live.iter().zip(&indexed_text) {
            let pieces = crate::text::chunks::chunks(text, budget);
            spans.push((texts.len(), pieces.len()));
            weights.push((entry.family_id, entry.raw_text.len().max(1)));
            texts.extend(pieces.into_iter().map(|p| format!("{prefix}{p}")));
        }
        let embedded = if live.is_empty() {
            None
        } else {
            let count = texts.len();
            match self.call_embed_shared(&weights, &root, texts, crate::models::EmbedRole::Passage).await {
                Ok(done) if done.vectors.len() == count => Some(done),
                Ok(done) => {
                    let which: Vec<usize> = live.iter().map(|(i, _)| *i).collect();
                    fail_all(&mut outcomes, &which, ModelError::BadResponse(format!("{} embeddings for {count} pieces", done.vectors.len())).into());
                    None
                }
                Err(e) => {
                    let which: Vec<usize> = live.iter().map(|(i, _)| *i).collect();
                    fail_all(&mut outcomes, &which, e.into());
                    None
                }
            }
        };

        if let Some(done) = embedded {
            let mut vectors = done.vectors.into_iter();
            let mut records: Vec<(usize, bool, VectorRecord)> = Vec::with_capacity(live.len());
            for (((i, entry), (_, count)), text) in live.iter().zip(&spans).zip(&indexed_text) {
                let mut mine: Vec<Vec<f32>> = vectors.by_ref().take(*count).collect();
                let vector = if mine.is_empty() { Vec::new() } else { mine.remove(0) };
                // The payload from the insight if enrichment already ran for this version.
                let insight = insights.iter().find(|x| x.entry_id == entry.id && x.entry_version == entry.version).cloned();
                let had_insight = insight.is_some();
                let (member_ids, topics, emotions) = match insight {
                    Some(x) => (x.member_ids, x.topics, x.emotions),
                    None => (entry.member_ids.clone(), Vec::new(), Vec::new()),
                };
                let record = VectorRecord {
                    entry_id: entry.id,
                    entry_version: entry.version,
                    model: done.model.clone(),
                    vector,
                    extra_chunks: mine,
                    member_ids,
                    topics,
                    emotions,
                    occurred_at: entry.occurred_at,
                    terms: crate::text::lexical::terms(text),
                };
                records.push((*i, had_insight, record));
            }
            for &family in &families {
                let mine: Vec<&(usize, bool, VectorRecord)> = records.iter().filter(|(i, _, _)| jobs[*i].family_id == family).collect();
                if mine.is_empty() {
                    continue;
                }
                let which: Vec<usize> = mine.iter().map(|(i, _, _)| *i).collect();
                let span = root.child("upsert_vectors", RunType::Tool, json!({ "family_id": family, "count": mine.len(), "backend": self.b.index.backend() }));
                if let Err(e) = self.b.index.upsert_many(family, mine.iter().map(|(_, _, r)| r.clone()).collect()).await {
                    span.fail(&e.to_string());
                    fail_all(&mut outcomes, &which, e.into());
                    continue;
                }
                span.end(json!({ "ok": true }));
                let versions: Vec<(EntryId, i64, String)> = mine.iter().map(|(_, _, r)| (r.entry_id, r.entry_version, r.terms.join(" "))).collect();
                let first = match self.b.store.mark_indexed_many(family, &versions).await {
                    Ok(first) => first,
                    Err(e) => {
                        fail_all(&mut outcomes, &which, e.into());
                        continue;
                    }
                };
                let now = Utc::now();
                // Enrichment may have landed between reading the insights and the
                // write: its payload update then found no point. Whichever finishes
                // second writes the insight's payload, so the point ends equal to it.
                let unenriched: Vec<EntryId> = mine.iter().filter(|(_, had, _)| !had).map(|(_, _, r)| r.entry_id).collect();
                let late = self.b.store.get_insights(family, &unenriched).await;
                // (Two jobs of one entry in a batch — its first embedding and the one after its
                // photo's description, say — are one parent wait.)
                let mut observed: Vec<EntryId> = Vec::new();
                // The late insights' payloads, written in one call after the loop.
                let mut late_updates: Vec<(usize, PayloadUpdate)> = Vec::new();
                for (i, had_insight, r) in &mine {
                    if let Some((_, entry)) = live.iter().find(|(j, _)| j == i).filter(|(_, e)| first.contains(&e.id) && !observed.contains(&e.id)) {
                        observed.push(entry.id);
                        // Freshness: from this version's save to searchable (the first
                        // time only: a re-embedding after a photo's description or a
                        // reindex is not a parent waiting).
                        self.b.metrics.observe("dadly_index_lag_seconds", &[], (now - entry.updated_at).to_std().unwrap_or_default());
                    }
                    let late = match &late {
                        _ if *had_insight => Ok(None),
                        Ok(found) => Ok(found.iter().find(|x| x.entry_id == r.entry_id && x.entry_version == r.entry_version)),
                        Err(e) => Err(e.to_string()),
                    };
                    outcomes[*i] = match late {
                        Ok(Some(x)) => {
                            let update = PayloadUpdate { entry_id: r.entry_id, member_ids: x.member_ids.clone(), topics: x.topics.clone(), emotions: x.emotions.clone() };
                            late_updates.push((*i, update));
                            None
                        }
                        Ok(None) => Some(Ok("indexed")),
                        Err(e) => Some(Err(Arc::new(StoreError::Unavailable(e.into()).into()))),
                    };
                }
                if !late_updates.is_empty() {
                    let updates: Vec<PayloadUpdate> = late_updates.iter().map(|(_, u)| u.clone()).collect();
                    let written = self.b.index.set_payloads(family, &updates).await.map_err(|e| Arc::new(JobError::from(e)));
                    for (i, _) in &late_updates {
                        outcomes[*i] = Some(written.clone().map(|()| "indexed"));
                    }
                }
            }
        }
        let outcomes: Vec<BatchOutcome> = outcomes.into_iter().map(|o| o.unwrap_or(Err(Arc::new(JobError::Panicked("the batch left a job without an outcome".into()))))).collect();
        let counted = |what: &str| outcomes.iter().filter(|o| matches!(o, Ok(w) if *w == what)).count();
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        let summary = json!({ "indexed": counted("indexed"), "stale": counted("stale"), "failed": failed });
        match outcomes.iter().find_map(|o| o.as_ref().err()) {
            Some(e) if failed == outcomes.len() => root.fail(&e.to_string()),
            _ => root.end(summary),
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insight_output_is_validated_and_normalised() {
        let out = parse_enrich(r#"{"summary":" Lost a tooth ","topics":["Milestone","milestone",""],"emotions":["Joy"],"members":["Minji"]}"#).unwrap();
        assert_eq!(out, EnrichOutput { summary: "Lost a tooth".into(), topics: vec!["milestone".into()], emotions: vec!["joy".into()], members: vec!["Minji".into()] });
        assert!(parse_enrich("```json\n{\"summary\":\"x\",\"topics\":[],\"emotions\":[],\"members\":[]}\n```").is_ok());
        // NUL from a model never reaches the store (Postgres refuses it, failing the whole batch's write).
        let nul = parse_enrich(r#"{"summary":"민지\u0000가 웃었다。🦷","topics":["\u0000","이\u0000빨"],"emotions":["joy\u0000"],"members":[]}"#).unwrap();
        assert_eq!((nul.summary.as_str(), nul.topics.clone(), nul.emotions.clone()), ("민지가 웃었다。🦷", vec!["이빨".to_string()], vec!["joy".to_string()]));
    }

    #[test]
    fn malformed_insight_output_is_a_bad_response() {
        for bad in ["not json", r#"{"topics":[]}"#, r#"{"summary":"x","topics":"a","emotions":[],"members":[]}"#, r#"{"summary":"","topics":[],"emotions":[],"members":[]}"#] {
            assert!(matches!(parse_enrich(bad), Err(ModelError::BadResponse(_))), "{bad}");
        }
    }
}
