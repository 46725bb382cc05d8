"""The BioImage Model Zoo: export and import of model packages (``bioimageio``), and the
reader of their PyTorch state dicts that never unpickles (``state_dicts``)."""
