//! The per-thread stack of entered spans, and finishing a span into the thread's ring.
//!
//! A frame is the live state of an entered span (or just a context, for scopes that carry a
//! parent without recording). An `EnteredSpan` keeps its frame here from start to finish;
//! an instrumented future moves its frames in for the length of each poll and back out when
//! the poll returns `Pending`, which is what makes the current span belong to the task rather
//! than to the thread.
//!
//! A recording frame holds its span's [`SpanRecord`] from the start, filled in as the span
//! goes, so that finishing only stamps the times on it and moves it into the ring.

use crate::clock::{self, Ticks};
use crate::context::SpanContext;
use crate::in_place::{owns_nothing, write_fields};
use crate::record::{LogFields, LogList, LogRecord, Relationship, SpanRecord, EXPLICIT_TIME};
use crate::recorder::{self, Producer};
use crate::tag::{SpanStr, TagList, TagValue};
use std::cell::RefCell;
use std::mem;
use std::ptr;

/// When something on a recording span happened (its start, a log).
#[derive(Clone, Copy)]
pub(crate) enum Stamp {
    /// Now, as far as the span is concerned: a clock reading.
    At(Ticks),
    /// An explicit wall-clock time (`SpanBuilder::start_time`, `Span::log_at`), in
    /// nanoseconds since the epoch.
    UnixNanos(u64),
}

impl Stamp {
    /// The time as a raw record holds it (see [`SpanRecord::settle`]).
    #[inline]
    fn raw(self) -> u64 {
        match self {
            Stamp::At(ticks) => ticks.0,
            // Times past 2262 do not fit the marked form; they are clamped.
            Stamp::UnixNanos(nanos) => nanos.min(!EXPLICIT_TIME) | EXPLICIT_TIME,
        }
    }
}

/// A frame of the span stack: a started span's record so far, or only a context made current
/// (see [`Role`]). It lives on its thread's stack while entered, and in a [`Span`](crate::Span)
/// or a suspended future's frame list otherwise.
pub(crate) struct SpanFrame {
    /// Identifies the frame for the span value that owns it (an `EnteredSpan`, a `Span`): the span id for a live span, a random key for a
    /// context-only frame (whose context may be entered several times), the `tracing` span
    /// id for a stand-in.
    pub(crate) key: u64,
    role: Role,
    /// The span so far, with raw times (for a context-only frame, only its context means
    /// anything; for a stand-in, its context, tags and logs).
    record: SpanRecord,
}

/// What a frame is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A context-only frame, which records nothing.
    Context,
    /// A live span's frame: its record goes to the ring when the span finishes.
    Span,
    /// Stands in for a span whose record is kept elsewhere (a `tracing` span's, while it is
    /// entered): it takes the tags and logs made while it is current, for its span to
    /// [absorb](SpanFrame::absorb) when it is left, and never goes to the ring itself.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    StandIn,
}

/// Why a span finished, when it is not the normal way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Normal,
    /// The code inside panicked: the span is marked `error = true`.
    Panicked,
    /// The future was dropped before it completed: the span is marked `cancelled = true`.
    Cancelled,
}

impl Ending {
    /// How a span that finishes now ends: panicked, when the thread is unwinding.
    #[inline]
    pub(crate) fn now() -> Ending {
        if std::thread::panicking() {
            Ending::Panicked
        } else {
            Ending::Normal
        }
    }
}

impl SpanFrame {
    /// The frame of a span that records, started at `start`.
    #[inline]
    pub(crate) fn recording(
        context: SpanContext,
        parent: Option<(Relationship, u64)>,
        name: SpanStr,
        tags: TagList,
        start: Stamp,
    ) -> SpanFrame {
        SpanFrame {
            key: context.span_id().get(),
            role: Role::Span,
            record: SpanRecord {
                context,
                parent,
                name,
                start_unix_nanos: start.raw(),
                duration_nanos: 0,
                tags,
                logs: LogList::new(),
            },
        }
    }

    /// A frame that makes `context` current without recording anything.
    pub(crate) fn context_only(key: u64, context: SpanContext) -> SpanFrame {
        SpanFrame {
            key,
            role: Role::Context,
            record: SpanRecord {
                context,
                parent: None,
                name: SpanStr::from_static(""),
                start_unix_nanos: 0,
                duration_nanos: 0,
                tags: TagList::new(),
                logs: LogList::new(),
            },
        }
    }

    pub(crate) fn context(&self) -> &SpanContext {
        &self.record.context
    }

    pub(crate) fn context_mut(&mut self) -> &mut SpanContext {
        &mut self.record.context
    }

    /// True when the frame is a live span's, which records (not only a context, nor a
    /// stand-in).
    pub(crate) fn is_recording(&self) -> bool {
        self.role == Role::Span
    }

    /// True when tags and logs set on the frame are kept: a recording span's, or a stand-in
    /// for one.
    #[inline]
    pub(crate) fn takes_changes(&self) -> bool {
        self.role != Role::Context
    }

    /// The record of a recording frame, to change what a span started with (its name, its
    /// parent); `None` for a context-only frame or a stand-in.
    #[cfg(feature = "tracing")]
    pub(crate) fn record_mut(&mut self) -> Option<&mut SpanRecord> {
        (self.role == Role::Span).then_some(&mut self.record)
    }

    /// Takes in what was set on a stand-in for this frame's span while it was current: its
    /// tags and logs in order, and its context when baggage changed it.
    #[cfg(feature = "tracing")]
    #[cold]
    pub(crate) fn absorb(&mut self, stand_in: SpanFrame) {
        let SpanRecord {
            context,
            tags,
            logs,
            ..
        } = stand_in.record;
        if !context.shares_extras_with(&self.record.context) {
            self.record.context = context;
        }
        for tag in tags.iter() {
            self.set_tag(tag.key.clone(), tag.value.clone());
        }
        let (logs, dropped) = logs.into_parts();
        for log in logs {
            self.push_log(log);
        }
        if dropped > 0 && self.takes_changes() {
            self.record.logs.count_dropped(dropped);
        }
    }

    pub(crate) fn set_tag(&mut self, key: SpanStr, value: TagValue) {
        if self.takes_changes() {
            self.record
                .tags
                .set_within(key, value, recorder::max_tags_per_span());
        }
    }

    /// Adds a log of `fields` at `at` within the per-span cap.
    #[inline]
    pub(crate) fn log(&mut self, at: Stamp, fields: LogFields) {
        if self.takes_changes() {
            // Raw, like the start: converted with the span's other readings when drained.
            self.push_log(LogRecord::raw(at.raw(), fields));
        }
    }

    /// Adds a log (with a raw time) within the per-span cap.
    #[inline]
    fn push_log(&mut self, log: LogRecord) {
        if self.takes_changes() {
            self.record
                .logs
                .push_within(log, recorder::max_logs_per_span());
        }
    }

    /// Turns a finished frame into its (raw) record; `None` for a context-only frame.
    #[inline]
    pub(crate) fn into_record(mut self, end: Ticks, ending: Ending) -> Option<SpanRecord> {
        self.stamp(end, ending).then_some(self.record)
    }

    /// Completes the record of a span that finishes at `end`, in place. False for a
    /// context-only frame, which has no record.
    #[inline]
    fn stamp(&mut self, end: Ticks, ending: Ending) -> bool {
        if self.role != Role::Span {
            return false;
        }
        match ending {
            Ending::Normal => {}
            Ending::Panicked => self.record.tags.set("error".into(), TagValue::Bool(true)),
            Ending::Cancelled => self
                .record
                .tags
                .set("cancelled".into(), TagValue::Bool(true)),
        }
        self.record.duration_nanos = end.0;
        true
    }
}

/// Takes the top frame off `stack` and moves its record into the ring (or drops it, if the
/// ring is full).
///
/// # Safety
/// `stack` is not empty. (Its top frame should be a recording span's, stamped: its record is
/// what goes to the ring.)
#[inline(always)]
unsafe fn move_top_to_ring(stack: &mut Vec<SpanFrame>, producer: &mut Option<Producer>) {
    let len = stack.len();
    // SAFETY: the top frame leaves the stack (the length no longer covers it) and its record
    // is given up to `push_record_from`; its other fields own nothing (`record_to_move`).
    unsafe {
        stack.set_len(len - 1);
        let frame = &mut *stack.as_mut_ptr().add(len - 1);
        push_record_from(producer, record_to_move(frame));
    }
}

/// The record of a frame, to move out of it while the frame's other fields are forgotten:
/// each is checked to own nothing, and naming every field makes one added to `SpanFrame` a compile
/// error here until it is sorted in.
#[inline(always)]
fn record_to_move(frame: &mut SpanFrame) -> *mut SpanRecord {
    let SpanFrame { key, role, record } = frame;
    owns_nothing(key);
    owns_nothing(role);
    record
}

/// Moves a record from `src` to `dst` field by field: an empty tag list and an empty log list
/// (most spans') are written anew rather than copied, which leaves under half the bytes of a
/// record to copy.
///
/// # Safety
/// `src` points to a valid record that the caller gives up (it must not use or drop it
/// after this); `dst` to memory for one record, valid for writes and apart from `src`, which
/// is overwritten without being dropped.
#[inline]
unsafe fn move_record(src: *mut SpanRecord, dst: *mut SpanRecord) {
    macro_rules! read {
        ($field:ident) => {
            ptr::addr_of!((*src).$field).read()
        };
    }
    // SAFETY: as the caller promises; every field of `dst` is written once (`write_fields`
    // checks that all are named), from its field of `src`, read once; the lists that are not
    // copied are new ones, which own nothing.
    unsafe {
        write_fields!(dst => SpanRecord {
            context: read!(context),
            parent: read!(parent),
            name: read!(name),
            start_unix_nanos: read!(start_unix_nanos),
            duration_nanos: read!(duration_nanos),
            @logs => |logs| LogList::move_to(ptr::addr_of!((*src).logs), logs),
            @tags => |tags| TagList::move_to(ptr::addr_of!((*src).tags), tags),
        });
    }
}

/// Moves the record at `record` into the ring of `producer`, or drops it if the ring is full
/// (and cannot grow: the span is then counted as dropped).
///
/// # Safety
/// `record` points to a valid record that the caller gives up.
#[inline]
unsafe fn push_record_from(producer: &mut Option<Producer>, record: *mut SpanRecord) {
    // SAFETY: as the caller promises; the record moves once, into the ring, or is dropped.
    unsafe {
        if !recorder::push_with(producer, move |slot| move_record(record, slot)) {
            ptr::drop_in_place(record);
        }
    }
}

/// How many empty frame lists a thread keeps for futures that suspend.
const SPARE_LISTS: usize = 32;

/// A thread's spans: the stack of entered frames, the producing end of its ring of finished
/// spans, and spare frame lists for futures that suspend.
pub(crate) struct ThreadSpans {
    pub(crate) stack: Vec<SpanFrame>,
    producer: Option<Producer>,
    /// Empty frame lists left by futures that resumed, for the next ones to suspend: a
    /// suspending future then allocates nothing.
    spare: Vec<Vec<SpanFrame>>,
}

impl ThreadSpans {
    const fn new() -> Self {
        ThreadSpans {
            stack: Vec::new(),
            producer: None,
            spare: Vec::new(),
        }
    }

    pub(crate) fn top(&self) -> Option<&SpanFrame> {
        self.stack.last()
    }

    pub(crate) fn top_mut(&mut self) -> Option<&mut SpanFrame> {
        self.stack.last_mut()
    }

    pub(crate) fn find_mut(&mut self, key: u64) -> Option<&mut SpanFrame> {
        self.stack.iter_mut().rev().find(|f| f.key == key)
    }

    /// Pushes a frame; with the frame built by the (inlined) caller, the compiler writes it
    /// straight into the stack's memory.
    #[inline]
    pub(crate) fn push(&mut self, frame: SpanFrame) {
        self.stack.reserve(1);
        let len = self.stack.len();
        // SAFETY: `reserve` made room for one more frame at `len`, which is written before the
        // length covers it.
        unsafe {
            self.stack.as_mut_ptr().add(len).write(frame);
            self.stack.set_len(len + 1);
        }
    }

    /// Pushes the frame of a recording span, writing it field by field straight into the
    /// stack's memory (the compiler would build it elsewhere and copy it). Returns its key.
    ///
    /// # Safety
    /// `tags` points to a valid list that the caller gives up: it moves into the frame.
    #[inline(always)]
    pub(crate) unsafe fn push_recording(
        &mut self,
        context: SpanContext,
        parent: Option<(Relationship, u64)>,
        name: SpanStr,
        tags: *const TagList,
        start: Stamp,
    ) -> u64 {
        let key = context.span_id().get();
        // SAFETY: passed on from the caller.
        unsafe { self.push_in_place(key, Role::Span, context, parent, name, tags, start.raw()) };
        key
    }

    /// Pushes a context-only frame for `context` under `key` (see [`SpanFrame::context_only`]),
    /// written in place as [`ThreadSpans::push_recording`] does.
    #[inline]
    pub(crate) fn push_context_only(&mut self, key: u64, context: SpanContext) {
        self.push_bare(key, Role::Context, context);
    }

    /// Pushes a stand-in under `key` for a span whose record is kept elsewhere (see
    /// [`Role::StandIn`]), with the span's `context`; a context-only frame when the span
    /// does not record.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn push_stand_in(&mut self, key: u64, context: SpanContext, records: bool) {
        let role = if records {
            Role::StandIn
        } else {
            Role::Context
        };
        self.push_bare(key, role, context);
    }

    /// Leaves the stand-in with `key` (normally the top frame) if nothing was set on it:
    /// returns false, with the stand-in left where it is, when tags, logs or baggage were,
    /// for its span to [absorb](SpanFrame::absorb) (see [`ThreadSpans::take`]).
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn leave_stand_in(&mut self, key: u64) -> bool {
        let Some(at) = self.position(key) else {
            return true;
        };
        let record = &self.stack[at].record;
        if !record.tags.is_new() || !record.logs.is_empty() || record.context.has_extras() {
            return false;
        }
        if at + 1 == self.stack.len() {
            // SAFETY: the top frame leaves the stack undropped; an untouched stand-in owns
            // nothing (no tags, logs or baggage, a borrowed name, no parent).
            unsafe { self.stack.set_len(at) };
        } else {
            drop(self.stack.remove(at));
        }
        true
    }

    /// Takes the frame with `key` off the stack, wherever it is.
    #[cold]
    pub(crate) fn take(&mut self, key: u64) -> Option<SpanFrame> {
        let at = self.stack.iter().rposition(|f| f.key == key)?;
        Some(self.stack.remove(at))
    }

    /// Pushes a frame with `context` and nothing else, written in place.
    #[inline(always)]
    fn push_bare(&mut self, key: u64, role: Role, context: SpanContext) {
        let empty = mem::ManuallyDrop::new(TagList::new());
        // SAFETY: the empty list moves into the frame; its original is not dropped.
        unsafe {
            self.push_in_place(
                key,
                role,
                context,
                None,
                SpanStr::from_static(""),
                &*empty,
                0,
            );
        }
    }

    /// Writes a frame field by field at the end of the stack.
    ///
    /// # Safety
    /// `tags` points to a valid list that the caller gives up: it moves into the frame.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn push_in_place(
        &mut self,
        key: u64,
        role: Role,
        context: SpanContext,
        parent: Option<(Relationship, u64)>,
        name: SpanStr,
        tags: *const TagList,
        start_raw: u64,
    ) {
        self.stack.reserve(1);
        let len = self.stack.len();
        // SAFETY: `reserve` made room for a frame at `len`; every field is written (as
        // `write_fields` checks) before the length covers it; the caller gave `*tags` up.
        unsafe {
            let frame = self.stack.as_mut_ptr().add(len);
            write_fields!(frame => SpanFrame {
                key: key,
                role: role,
                @record => |record| write_fields!(record => SpanRecord {
                    context: context,
                    parent: parent,
                    name: name,
                    start_unix_nanos: start_raw,
                    duration_nanos: 0,
                    logs: LogList::new(),
                    @tags => |to| TagList::move_to(tags, to),
                }),
            });
            self.stack.set_len(len + 1);
        }
    }

    /// Finishes the entered span with `key` into this thread's ring. It is normally the top
    /// frame: its record then goes from the stack to the ring in one copy.
    #[inline]
    pub(crate) fn finish_entered(&mut self, key: u64, end: Ticks, ending: Ending) {
        if self.stack.last().is_some_and(|top| top.key == key) {
            self.finish_top(end, ending);
        } else if let Some(frame) = self.take(key) {
            self.finish(frame, end, ending);
        }
    }

    /// Finishes the entered span with `key` now, as [`ThreadSpans::finish_entered`] does. The clock
    /// and the panic flag are read only for a span that records: leaving the scope of a span
    /// that is not recorded (a sampled-out root, an entered context) reads neither.
    #[inline]
    pub(crate) fn finish_entered_now(&mut self, key: u64) {
        let ThreadSpans {
            stack, producer, ..
        } = self;
        match stack.last_mut() {
            Some(top) if top.key == key => {
                if top.role != Role::Span {
                    // Dropped where it is, not moved out first.
                    stack.truncate(stack.len() - 1);
                    return;
                }
                top.stamp(clock::now(), Ending::now());
                // SAFETY: the top frame records, and is stamped.
                unsafe { move_top_to_ring(stack, producer) };
            }
            _ => self.finish_below_top_now(key),
        }
    }

    #[cold]
    fn finish_below_top_now(&mut self, key: u64) {
        if let Some(frame) = self.take(key).filter(SpanFrame::is_recording) {
            self.finish(frame, clock::now(), Ending::now());
        }
    }

    /// Finishes the top frame's span (if any) into this thread's ring: its record goes from
    /// the stack to the ring in one copy.
    #[inline]
    pub(crate) fn finish_top(&mut self, end: Ticks, ending: Ending) {
        let ThreadSpans {
            stack, producer, ..
        } = self;
        let Some(top) = stack.last_mut() else {
            return;
        };
        if !top.stamp(end, ending) {
            stack.truncate(stack.len() - 1);
            return;
        }
        // SAFETY: the top frame records, and is stamped.
        unsafe { move_top_to_ring(stack, producer) };
    }

    /// Finishes the span whose frame is in `slot` (a detached span's) into this thread's
    /// ring: its record goes from `slot` to the ring in one copy, and `slot` is left empty.
    #[inline]
    pub(crate) fn finish_from(&mut self, slot: &mut Option<SpanFrame>, end: Ticks, ending: Ending) {
        let Some(frame) = slot.as_mut() else {
            return;
        };
        if !frame.stamp(end, ending) {
            *slot = None;
            return;
        }
        // SAFETY: the record is given up to `push_record_from`, and `slot` is then overwritten
        // without dropping the frame, whose other fields own nothing (`record_to_move`).
        unsafe {
            push_record_from(&mut self.producer, record_to_move(frame));
            ptr::write(slot, None);
        }
    }

    /// Enters the frame in `slot`: moves it onto the stack in one copy, leaving `slot` empty.
    /// Returns its key, or `None` if `slot` is empty.
    #[inline]
    pub(crate) fn push_from(&mut self, slot: &mut Option<SpanFrame>) -> Option<u64> {
        let frame: *const SpanFrame = slot.as_ref()?;
        self.stack.reserve(1);
        let len = self.stack.len();
        // SAFETY: the frame is copied into the room `reserve` made, which the length then
        // covers, and `slot` is overwritten without dropping it: the stack is its one owner.
        unsafe {
            let key = (*frame).key;
            ptr::copy_nonoverlapping(frame, self.stack.as_mut_ptr().add(len), 1);
            ptr::write(slot, None);
            self.stack.set_len(len + 1);
            Some(key)
        }
    }

    /// Leaves the frame with `key` (normally the top one): moves it off the stack into the
    /// empty `slot` in one copy. If `slot` already holds a frame, the one on the stack is
    /// dropped instead.
    #[inline]
    pub(crate) fn pop_into(&mut self, key: u64, slot: &mut Option<SpanFrame>) {
        let Some(at) = self.position(key) else {
            return;
        };
        if slot.is_some() {
            drop(self.stack.remove(at));
            return;
        }
        let len = self.stack.len();
        // SAFETY: the frame at `at` moves to `slot` (empty: nothing to drop) and the frames
        // above it move down one place, before the length stops covering the last place.
        unsafe {
            let frame = self.stack.as_mut_ptr().add(at);
            ptr::write(slot, Some(ptr::read(frame)));
            if at + 1 < len {
                ptr::copy(frame.add(1), frame, len - at - 1);
            }
            self.stack.set_len(len - 1);
        }
    }

    /// Where the frame with `key` is on the stack (normally on top).
    #[inline]
    pub(crate) fn position(&self, key: u64) -> Option<usize> {
        let len = self.stack.len();
        if len > 0 && self.stack[len - 1].key == key {
            return Some(len - 1);
        }
        self.stack.iter().rposition(|f| f.key == key)
    }

    /// Moves the frames from `depth` up off the stack to the end of `frames` (one copy). A
    /// list without room takes a spare one, or allocates only the room it needs.
    #[inline]
    pub(crate) fn suspend_into(&mut self, depth: usize, frames: &mut Vec<SpanFrame>) {
        let count = self.stack.len().saturating_sub(depth);
        if frames.capacity() == 0 {
            if let Some(spare) = self.spare.pop() {
                *frames = spare;
            }
        }
        frames.reserve_exact(count);
        let len = frames.len();
        // SAFETY: the frames leave the stack (its length no longer covers them) for the room
        // reserved after the end of `frames`, which then covers them: each has one owner.
        unsafe {
            self.stack.set_len(self.stack.len() - count);
            let from = self.stack.as_ptr().add(self.stack.len());
            ptr::copy_nonoverlapping(from, frames.as_mut_ptr().add(len), count);
            frames.set_len(len + count);
        }
    }

    /// Moves a suspended future's frames onto the stack (one copy), and keeps its emptied
    /// list for the next future to suspend: a future that runs holds no list.
    pub(crate) fn resume_from(&mut self, frames: &mut Vec<SpanFrame>) {
        self.stack.append(frames);
        if self.spare.len() < SPARE_LISTS {
            self.spare.push(mem::take(frames));
        }
    }

    #[inline]
    pub(crate) fn finish(&mut self, frame: SpanFrame, end: Ticks, ending: Ending) {
        if let Some(record) = frame.into_record(end, ending) {
            recorder::push(&mut self.producer, record);
        }
    }
}

thread_local! {
    static THREAD_SPANS: RefCell<ThreadSpans> = const { RefCell::new(ThreadSpans::new()) };
}

/// Runs `f` on this thread's stack. Returns `None` (and `f` is not run) when the thread is
/// shutting down or the stack is already borrowed further up this call chain: tracing then
/// degrades to a no-op rather than panicking in the user's program.
#[inline]
pub(crate) fn with_thread_spans<R>(f: impl FnOnce(&mut ThreadSpans) -> R) -> Option<R> {
    THREAD_SPANS
        .try_with(|local| local.try_borrow_mut().ok().map(|mut l| f(&mut l)))
        .ok()
        .flatten()
}

/// Finishes the span whose frame is in `slot`, not on this thread's stack (a detached span, a
/// dropped future's), leaving `slot` empty.
pub(crate) fn finish_detached(slot: &mut Option<SpanFrame>, ending: Ending) {
    if !slot.as_ref().is_some_and(SpanFrame::is_recording) {
        *slot = None;
        return;
    }
    let end = clock::now();
    with_thread_spans(|local| local.finish_from(slot, end, ending));
    if slot.is_some() {
        *slot = None;
        // The thread is shutting down: the span cannot be recorded, but it is counted.
        recorder::lost(1);
    }
}
