"""ModelHub's base library: what every contributor package builds on.

`model.ModelBase` is the interface the engine calls (`infer`), and
`processor.ImageProcessorBase` turns an input file into the numpy array a
model needs through two chains of responsibility: loaders (file -> image
object) and converters (image object -> numpy). The module and class names
are ModelHub's public contract, camelCase included, so existing contributor
packages import them unchanged.
"""
