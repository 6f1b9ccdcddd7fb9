"""What every connector shares: the polling loop, the checkpoint, the publisher.

A connector (``connectors/<system>/source.py``) only polls its system and
hands rows to :class:`~gridhub.connectors.base.publisher.EnvelopePublisher`;
:class:`~gridhub.connectors.base.checkpoint.Checkpoint` decides when a
position is safe to resume from.
"""
