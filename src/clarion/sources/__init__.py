"""Identity sources: Cisco ISE pxGrid (sessions), ISE ERS (TrustSec), Active Directory, files.

Each source turns its outside system into the plain records of ``clarion.sources.model``;
writing them into the graph is the identity merger's job, so sources never touch the store.
"""
