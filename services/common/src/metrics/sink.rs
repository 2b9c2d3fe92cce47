//! Where points go: a bounded buffer of encoded lines, and the writer task that drains it in
//! batches to InfluxDB 2 (the influxdb2 crate) or to a line-protocol file.
//!
//! Nobody waits on the writer: the sampler appends to the buffer under a mutex held for a
//! few pushes, and when the buffer is full the oldest lines go first and are counted. A write
//! that fails or times out leaves its lines in the buffer for the next round.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Lines waiting to be written, oldest first, at most `capacity`.
pub(crate) struct Buffer {
    inner: Mutex<BufferInner>,
    capacity: usize,
    dropped: AtomicU64,
    notify: Notify,
}

struct BufferInner {
    lines: VecDeque<String>,
    /// Sequence number the next pushed line gets; the front's is `next_seq - lines.len()`.
    next_seq: u64,
}

impl Buffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(BufferInner {
                lines: VecDeque::new(),
                next_seq: 0,
            }),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BufferInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append lines, dropping (and counting) the oldest ones past the capacity, and wake the
    /// writer.
    pub(crate) fn push(&self, lines: impl IntoIterator<Item = String>) {
        {
            let mut inner = self.lock();
            for line in lines {
                if inner.lines.len() >= self.capacity {
                    inner.lines.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                inner.lines.push_back(line);
                inner.next_seq += 1;
            }
        }
        self.notify.notify_one();
    }

    /// Points dropped since start.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// Copy up to `max` of the oldest lines into `body`, newline-terminated, without removing
    /// them. Returns the sequence number just past the last one copied, for [`Buffer::commit`].
    fn peek(&self, max: usize, body: &mut String) -> (u64, usize) {
        let inner = self.lock();
        let n = inner.lines.len().min(max);
        for line in inner.lines.iter().take(n) {
            body.push_str(line);
            body.push('\n');
        }
        let front = inner.next_seq - inner.lines.len() as u64;
        (front + n as u64, n)
    }

    /// Remove the lines before sequence number `end` that are still there (some may have been
    /// dropped for newer ones while they were being written).
    fn commit(&self, end: u64) {
        let mut inner = self.lock();
        let front = inner.next_seq - inner.lines.len() as u64;
        let written = end.saturating_sub(front).min(inner.lines.len() as u64);
        inner.lines.drain(..written as usize);
    }
}

/// Where a batch goes.
pub(crate) enum Sink {
    Influx {
        client: influxdb2::Client,
        org: String,
        bucket: String,
    },
    File {
        path: PathBuf,
        file: Option<tokio::fs::File>,
    },
}

impl Sink {
    pub(crate) fn describe(&self) -> String {
        match self {
            Sink::Influx {
                client,
                org,
                bucket,
            } => format!("InfluxDB {} (org {org}, bucket {bucket})", client.base),
            Sink::File { path, .. } => format!("file {}", path.display()),
        }
    }

    async fn write(&mut self, body: String) -> anyhow::Result<()> {
        match self {
            Sink::Influx {
                client,
                org,
                bucket,
            } => client
                .write_line_protocol(org, bucket, body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}")),
            Sink::File { path, file } => {
                if file.is_none() {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    *file = Some(
                        tokio::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&*path)
                            .await?,
                    );
                }
                let Some(f) = file.as_mut() else {
                    unreachable!("opened above")
                };
                let result = async {
                    f.write_all(body.as_bytes()).await?;
                    f.flush().await
                }
                .await;
                if result.is_err() {
                    // Reopen next time: the file may have been moved or its disk freed.
                    *file = None;
                }
                Ok(result?)
            }
        }
    }
}

/// Most lines per write request (InfluxDB advises batches of about 5,000 lines).
const BATCH_LINES: usize = 5_000;

/// The writer: wakes when the sampler pushes, writes everything buffered in batches, and
/// after `done` makes one last attempt. A failed round is retried at the next wake-up (once
/// per interval); failures are logged at most once per `log_every`.
pub(crate) async fn run_writer(
    buffer: &Buffer,
    mut sink: Sink,
    timeout: Duration,
    log_every: Duration,
    done: CancellationToken,
) {
    let mut last_log: Option<Instant> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = buffer.notify.notified() => {}
            _ = done.cancelled() => break,
        }
        flush(
            buffer,
            &mut sink,
            timeout,
            log_every,
            &mut last_log,
            &mut failing,
        )
        .await;
    }
    flush(
        buffer,
        &mut sink,
        timeout,
        Duration::ZERO,
        &mut last_log,
        &mut failing,
    )
    .await;
}

async fn flush(
    buffer: &Buffer,
    sink: &mut Sink,
    timeout: Duration,
    log_every: Duration,
    last_log: &mut Option<Instant>,
    failing: &mut bool,
) {
    loop {
        let mut body = String::new();
        let (end, n) = buffer.peek(BATCH_LINES, &mut body);
        if n == 0 {
            return;
        }
        let result = match tokio::time::timeout(timeout, sink.write(body)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("no answer within {timeout:?}")),
        };
        match result {
            Ok(()) => {
                buffer.commit(end);
                if *failing {
                    *failing = false;
                    tracing::info!(sink = %sink.describe(), "metrics: writing again");
                }
            }
            Err(e) => {
                *failing = true;
                if last_log.is_none_or(|t| t.elapsed() >= log_every) {
                    *last_log = Some(Instant::now());
                    tracing::warn!(
                        sink = %sink.describe(),
                        buffered = buffer.len(),
                        dropped = buffer.dropped(),
                        "metrics: writing {n} points failed, keeping them for the next try: {e:#}"
                    );
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("m f={i}i")).collect()
    }

    #[test]
    fn a_full_buffer_drops_and_counts_the_oldest_lines() {
        let buffer = Buffer::new(3);
        buffer.push(lines(0..5));
        assert_eq!(buffer.dropped(), 2);
        let mut body = String::new();
        let (end, n) = buffer.peek(10, &mut body);
        assert_eq!((n, body.as_str()), (3, "m f=2i\nm f=3i\nm f=4i\n"));
        buffer.commit(end);
        assert_eq!(buffer.len(), 0);
    }

    #[test]
    fn lines_pushed_during_a_write_survive_its_commit() {
        let buffer = Buffer::new(4);
        buffer.push(lines(0..3));
        let mut body = String::new();
        let (end, _) = buffer.peek(2, &mut body);
        // While 0 and 1 are being written, three more arrive and push both out.
        buffer.push(lines(3..6));
        buffer.commit(end);
        let mut rest = String::new();
        buffer.peek(10, &mut rest);
        assert_eq!(rest, "m f=2i\nm f=3i\nm f=4i\nm f=5i\n");
    }
}
