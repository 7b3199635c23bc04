"""A rehearsal of the paper protocol (config/paper.yaml) end to end on stand-ins of the real datasets.

- :mod:`pcreg.rehearsal.standins`: ``FIRE.7z`` with FIRE's exact layout and image size (2912 x 2912 JPEGs,
  S/P/A and P37, control points of a known homography) and the two OR-PAM repositories in the layout the
  adapter reads.
- :mod:`pcreg.rehearsal.server`: one HTTP server on 127.0.0.1 that serves ``FIRE.7z`` (with Range requests)
  and answers the Hugging Face Hub calls of ``huggingface_hub.snapshot_download`` for the two repositories.
- :mod:`pcreg.rehearsal.checks`: after the workflow ran, every paper table and figure with its expected rows,
  and the known geometry recovered on the FIRE stand-in.

``scripts/rehearse_paper.sh`` runs it all (docs/CLUSTER.md, "Rehearsing the paper protocol").
"""
