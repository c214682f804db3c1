"""A fake Cisco ISE pxGrid 2.0 node (control plane, Session Directory, TrustSec config, pubsub) for tests."""

from tests.fakes.pxgrid.server import FakePxGrid

__all__ = ["FakePxGrid"]
