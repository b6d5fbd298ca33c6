"""Closing a consumer's channel the way the shard workers need it."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingChannel


def close_without_cancel(connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
    """Close a shard's channel *without* cancelling its consumer first.

    pika's ``close()`` (blocking or not) sends ``basic.cancel`` before
    ``channel.close``: on the cancel, the broker hands the queue to the next consumer,
    which starts on messages behind those this channel still holds unacked (measured in
    ``test_a_shard_that_moves_keeps_its_order``: a later message overtook the held
    ones). On a bare ``channel.close`` the broker requeues what the channel held and
    passes the queue on in one step (as when a connection dies), so the next consumer
    starts exactly where this one stopped. pika has no public call for a bare close:
    marking its consumers as already cancelled makes ``close`` skip the cancels.
    """
    impl = channel._impl
    if impl.is_open:
        impl._cancelled.update(impl._consumers)
        impl.close()
    while not channel.is_closed:
        connection.process_data_events(time_limit=0.01)
