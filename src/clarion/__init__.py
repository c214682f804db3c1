"""Clarion: graph-centric network segmentation analytics for Cisco TrustSec."""

__version__ = "0.1.0"
