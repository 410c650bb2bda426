"""A small Vision Transformer with Keras 3 on JAX, trained data-parallel.

`@sky.integrations.keras(backend="jax")` starts JAX's distributed runtime on
every node (the head node is the coordinator) and sets a Keras DataParallel
distribution, so `model.fit` on each node's shard trains one model: the
gradients are averaged across the nodes at every step.

The data is scikit-learn's bundled 8x8 digits (no download); on a GPU pool,
swap in MNIST or your own data and a bigger model.
"""

import skyward as sky


def build_vit(image_size: int, patch_size: int, embed_dim: int, num_heads: int, num_layers: int):
    import keras
    from keras import layers

    class AddPositions(layers.Layer):
        """A learned position embedding, one vector per patch."""

        def build(self, input_shape):
            self.positions = self.add_weight(shape=input_shape[1:], initializer="random_normal")

        def call(self, x):
            return x + self.positions

    inputs = keras.Input((image_size, image_size, 1))
    patches = layers.Conv2D(embed_dim, patch_size, strides=patch_size)(inputs)
    x = AddPositions()(layers.Reshape((-1, embed_dim))(patches))
    for _ in range(num_layers):
        h = layers.LayerNormalization()(x)
        x = x + layers.MultiHeadAttention(num_heads, embed_dim // num_heads)(h, h)
        h = layers.LayerNormalization()(x)
        h = layers.Dense(embed_dim * 2, activation="gelu")(h)
        x = x + layers.Dense(embed_dim)(h)
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x))
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@sky.integrations.keras(backend="jax")
@sky.compute
def train_vit(epochs: int) -> dict:
    import numpy as np
    from sklearn.datasets import load_digits

    info = sky.instance_info()

    # Load the digits: 1797 images of 8x8 pixels
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    x_train, y_train = images[:1500], labels[:1500]
    x_test, y_test = images[1500:], labels[1500:]

    # Shard data
    x_local, y_local = sky.shard(x_train, y_train, shuffle=True)

    # Build ViT model
    model = build_vit(image_size=8, patch_size=2, embed_dim=32, num_heads=4, num_layers=2)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    # Train
    history = model.fit(
        x_local, y_local, epochs=epochs, batch_size=50, verbose=2 if info.is_head else 0
    )

    # Evaluate
    test_acc = model.evaluate(x_test, y_test, verbose=0)[1]

    return {
        "node": info.node,
        "samples": len(x_local),
        "loss": history.history["loss"],
        "test_accuracy": float(test_acc),
    }


with sky.ComputePool(
    provider=sky.provider_from_env(),
    nodes=2,
    # On a cloud: accelerator=sky.AcceleratorSpec.NVIDIA.A100(mig=["3g.40gb", "3g.40gb"]),
    image=sky.Image(
        pip=["keras>=3.2", "jax", "scikit-learn"],  # "jax[cuda12]" on GPUs
        env={"KERAS_BACKEND": "jax"},
    ),
) as pool:
    results = train_vit(epochs=10) @ pool

    for r in results:
        first, last = r["loss"][0], r["loss"][-1]
        print(
            f"node {r['node']}: {r['samples']} samples, loss {first:.3f} -> {last:.3f}, "
            f"test accuracy {r['test_accuracy']:.1%}"
        )
