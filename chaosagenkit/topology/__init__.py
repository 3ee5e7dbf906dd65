"""Systems of agents under chaos: topologies of chaos hosts serving agenkit compositions.

- ``spec``: the declaration (hosts, edges, compositions), start order and tiers; pure.
- ``node``: what a composition host serves (agenkit's composition over its edges) and worker leaves.
- ``system``: builds a topology (leaves first, one fault proxy per edge), reads it, tears it down.
- ``measure``: blast radius, success per tier, first failed tier, in-flight calls; pure.
- ``probes`` / ``actions``: the Chaos Toolkit face.
- ``answers``: answer checks for callers of composition hosts.
"""
