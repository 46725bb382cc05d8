"""What the dock runs, without Qt or napari: the jobs its workers run (``jobs``), the training
child process (``process``), the plain data of its layers (``layers``) and the state its
sections share (``dock``). The training child imports this package only, so it starts without
a GUI toolkit."""
