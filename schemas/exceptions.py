"""Errors raised by the schema layer.

``SchemaError`` derives from ``ValueError`` so that callers which already treat
bad input as a ``ValueError`` (dead-letter routing, for one) keep working; it is
meant to be re-parented under the hub's error tree once that exists.
"""


class SchemaError(ValueError):
    """Bytes or data that do not fit any registered Avro schema.

    Raised for a wrong magic byte, an unknown schema id or name, truncated or
    trailing bytes, undecodable Avro and data the encoder cannot write. The
    message always says which of these it was.
    """
