"""PCReg-Net, the system under study: model, blocks, loss, fast inference and its Method class (a plug-in)."""
