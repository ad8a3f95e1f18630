//! The shards of a [`ServerCore::threads`](crate::ServerCore::threads)
//! server: one thread each, with a scheduler, a Selector and a ServerCore
//! of its own, started by the ServerCore that stands for the whole server
//! and stopped (and joined) when it goes.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};

use axon::{Cat, Control, Handle, Scheduler, SchedulerHandle};

use crate::{Protocol, ServerCore};

/// One shard's thread and the handle that stops its scheduler.
struct ShardThread {
    /// The shard's ServerCore.
    core: Handle,
    scheduler: SchedulerHandle,
    thread: Option<JoinHandle<()>>,
}

/// The running shards (none for a single-threaded ServerCore).
#[derive(Default)]
pub(crate) struct Shards {
    /// Made by `ServerCore::threads` (so that a missing poller or
    /// descriptor is an error there), run once the ServerCore starts.
    schedulers: Vec<Scheduler>,
    threads: Vec<ShardThread>,
    /// Shards whose ServerCore has not yet said `producerFinished`.
    running: usize,
}

impl fmt::Debug for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shards({} of {} running)",
            self.running,
            self.threads.len()
        )
    }
}

impl Shards {
    /// Makes the schedulers of `n` shards (each with its poller).
    pub(crate) fn new(n: usize) -> io::Result<Shards> {
        let schedulers = (0..n)
            .map(|_| selector::scheduler())
            .collect::<io::Result<_>>()?;
        Ok(Shards {
            schedulers,
            threads: Vec::new(),
            running: 0,
        })
    }

    /// How many shards there are (0: a single-threaded ServerCore).
    pub(crate) fn count(&self) -> usize {
        self.schedulers.len() + self.threads.len()
    }

    /// No shards.
    pub(crate) fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Starts one thread per server in `servers` (the shards of
    /// `TcpServer::into_shards`), each running a ServerCore with a copy of
    /// `protocol` on a Selector scheduler whose CAT consults `cat` (the
    /// scheduler `top` runs on), and whose `signal` reaches `top`'s
    /// `_shardsignal`. On an error the shards already started are stopped.
    pub(crate) fn start(
        &mut self,
        servers: Vec<Handle>,
        local_addr: SocketAddr,
        protocol: &dyn Protocol,
        top: &Handle,
        cat: &Cat,
    ) -> io::Result<()> {
        let schedulers = std::mem::take(&mut self.schedulers);
        for (i, (server, scheduler)) in servers.into_iter().zip(schedulers).enumerate() {
            let started = self.start_one(i, server, scheduler, local_addr, protocol, top, cat);
            if let Err(e) = started {
                self.stop();
                return Err(e);
            }
        }
        log::info!("servercore {local_addr}: {} shards", self.threads.len());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn start_one(
        &mut self,
        i: usize,
        server: Handle,
        scheduler: Scheduler,
        local_addr: SocketAddr,
        protocol: &dyn Protocol,
        top: &Handle,
        cat: &Cat,
    ) -> io::Result<()> {
        let core = Handle::new(ServerCore::shard(
            server,
            local_addr,
            protocol.fork(),
            top.clone(),
        ));
        axon::link((&core, "signal"), (top, "_shardsignal")).map_err(io::Error::other)?;
        scheduler.cat().consult_after(cat);
        scheduler.activate(core.clone()).map_err(io::Error::other)?;
        let handle = scheduler.handle();
        let thread = thread::Builder::new()
            .name(format!("shard-{i}"))
            .spawn(move || {
                scheduler.run();
                log::debug!("shard {i}: stopped");
            })?;
        self.threads.push(ShardThread {
            core: core.clone(),
            scheduler: handle,
            thread: Some(thread),
        });
        self.running += 1;
        Ok(())
    }

    /// Sends `msg` to every shard's ServerCore `control` (a stop).
    pub(crate) fn tell_all(&self, msg: &Control) {
        for shard in &self.threads {
            crate::tell(&shard.core, "control", msg.clone());
        }
    }

    /// A shard's ServerCore has ended.
    pub(crate) fn one_ended(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Every shard's ServerCore has ended (true when there are none).
    pub(crate) fn all_ended(&self) -> bool {
        self.running == 0
    }

    /// Stops every shard's scheduler, whatever it is doing, and waits for
    /// its thread: what the ServerCore does when it goes, so that no shard
    /// outlives it (after a normal stop they have ended already).
    pub(crate) fn stop(&mut self) {
        for shard in &self.threads {
            shard.scheduler.stop();
        }
        for shard in &mut self.threads {
            if let Some(thread) = shard.thread.take() {
                if thread.join().is_err() {
                    log::error!("a shard's thread panicked");
                }
            }
        }
        self.schedulers.clear();
        self.running = 0;
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop();
    }
}
