#pragma once
// Class names beside their spheres in the 3D view. Before each frame the
// labels are placed in priority order (the picked class, the largest and the
// smallest classes, then by training count): beside the sphere, on the first
// of four sides (right, left, above, below) that stays in the view and
// overlaps no label placed before. A label that fits nowhere is hidden (all
// labels) or drawn on the right anyway (the few labels of "picked +
// extremes", which are always shown).
//
// All labels are one textured 2D actor: each name is rasterised once into a
// texture atlas, and each frame writes the quads of the placed labels (one
// draw call). Under software OpenGL a prop per label costs about 1 ms a frame
// each (a vtkTextActor that moves is even rasterised again every frame), so
// 40 placed labels would halve the frame rate. VTK 9.1's
// vtkLabelPlacementMapper avoids collisions too, but it anchors a label on
// its point (over the sphere) and rasterises every label on every frame.

#include <QColor>
#include <QString>

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <vector>

#include <vtkNew.h>
#include <vtkSmartPointer.h>

#include "label_mode.h"

class vtkCallbackCommand;
class vtkMatrix4x4;
class vtkRenderer;
class vtkImageData;
class vtkPolyData;
class vtkTexturedActor2D;

namespace ltlab::ui {

// The classes to label among `shown`, highest priority first: the picked
// class (when shown), the `extremes` largest and the `extremes` smallest by
// training count (ties by class id), then, for All, every other shown class
// by training count.
std::vector<int> labelledClasses(LabelMode mode, const std::vector<int>& shown,
                                 const std::vector<std::int64_t>& train_counts, int picked, int extremes = 3);

// World points to VTK display coordinates (origin bottom left) with the
// renderer's camera as it is now: one matrix for many points.
class ScreenProjector {
public:
    explicit ScreenProjector(vtkRenderer* renderer);
    ~ScreenProjector();
    struct Disc {
        double x, y, depth, radius; // centre and depth (0 near, 1 far), radius in pixels
    };
    Disc project(const Eigen::Vector3d& centre, double world_radius) const;

private:
    Eigen::Vector3d toDisplay(const Eigen::Vector3d& p) const;
    vtkRenderer* renderer_;
    vtkNew<vtkMatrix4x4> matrix_;
    Eigen::Vector3d up_;
};

class ClassLabels {
public:
    struct Label {
        int cls;
        QString text;
        Eigen::Vector3d centre; // of the class's sphere
        double radius;          // world units
        QColor colour;          // the class's colour (the label's frame)
        bool bold = false;      // the picked class
    };
    explicit ClassLabels(vtkRenderer* renderer); // placed before each of its frames
    ~ClassLabels();
    ClassLabels(const ClassLabels&) = delete;
    ClassLabels& operator=(const ClassLabels&) = delete;

    // Replaces the labels (priority order) and adds their actor to the renderer.
    void show(std::vector<Label> labels, bool always_shown);
    void clear(); // the renderer's props were removed
    void setFontScale(int scale); // exports at scale x the window's size
    const std::vector<Label>& labels() const { return labels_; }
    // The classes whose labels the last frame drew, and where (display pixels, lower left).
    std::vector<int> placedClasses() const;
    Eigen::Vector2d placedAt(int index) const { return placed_[static_cast<std::size_t>(index)]; }

private:
    void place();
    void rasterise(); // the atlas, at the font scale
    void writeQuads();

    vtkRenderer* renderer_;
    vtkSmartPointer<vtkCallbackCommand> observer_;
    unsigned long observer_tag_ = 0;
    std::vector<Label> labels_;
    vtkSmartPointer<vtkTexturedActor2D> actor_;
    vtkSmartPointer<vtkPolyData> quads_;
    vtkSmartPointer<vtkImageData> atlas_;
    std::vector<std::array<int, 4>> cells_; // each label's x, y, width, height in the atlas
    std::vector<Eigen::Vector2d> placed_;   // lower left on screen; x < 0: not placed
    bool always_shown_ = false;
    int scale_ = 1;
};

} // namespace ltlab::ui
